"""Settings: defaults < config file < PICUP_* environment < command-line flags."""

import stat

import pytest

from picup import config


def test_defaults_put_everything_under_the_data_folder(tmp_path):
    settings = config.load({"data_dir": str(tmp_path)}, environ={})
    assert settings.port == 8080
    assert settings.database_path == str(tmp_path / "picup.db")
    assert settings.storage_root == tmp_path / "library"
    assert settings.trash_days == 30


def test_file_then_environment_then_flags(tmp_path):
    path = tmp_path / "picup.toml"
    path.write_text('data_dir = "/srv/a"\n[server]\nport = 9000\nhost = "0.0.0.0"\n'
                    '[library]\ntrash_days = 7\n[uploads]\nraw_max_size = "20M"\n')
    env = {"PICUP_CONFIG": str(path), "PICUP_PORT": "9100", "PICUP_DATABASE": "/var/lib/picup/p.db"}
    settings = config.load({"port": 9200}, environ=env)
    assert settings.host == "0.0.0.0"  # from the file
    assert settings.trash_days == 7
    assert settings.raw_upload_limit == 20 * 1024**2
    assert settings.data_dir == "/srv/a"
    assert settings.database_path == "/var/lib/picup/p.db"  # environment
    assert settings.port == 9200  # flag beats environment


def test_environment_names_the_installer_relies_on(tmp_path):
    env = {"PICUP_HOST": "10.0.0.5", "PICUP_PORT": "8181", "PICUP_DATA_DIR": str(tmp_path)}
    settings = config.load(environ=env)
    assert (settings.host, settings.port, settings.data_path) == ("10.0.0.5", 8181, tmp_path)


@pytest.mark.parametrize(
    "text, complaint",
    [
        ("[server]\nprot = 1\n", "unknown setting [server] prot"),
        ("[storage]\nbackend = 'ftp'\n", "storage.backend"),
        ("[server]\nport = 'x'\n", "not a whole number"),
        ("[server\n", "picup.toml"),
    ],
)
def test_a_bad_config_file_says_what_is_wrong(tmp_path, text, complaint):
    path = tmp_path / "picup.toml"
    path.write_text(text)
    with pytest.raises(config.ConfigError, match=complaint.replace("[", r"\[").replace("]", r"\]")):
        config.load(environ={"PICUP_CONFIG": str(path)})


def test_missing_config_file_named_by_the_environment_is_an_error(tmp_path):
    with pytest.raises(config.ConfigError, match="does not exist"):
        config.load(environ={"PICUP_CONFIG": str(tmp_path / "nope.toml")})


def test_secret_key_is_generated_once_and_private(tmp_path):
    settings = config.load({"data_dir": str(tmp_path)}, environ={})
    key = settings.ensure_secret_key()
    path = tmp_path / "secret_key"
    assert len(key) > 40
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = config.load({"data_dir": str(tmp_path)}, environ={})
    assert again.ensure_secret_key() == key


def test_the_example_config_is_valid_and_complete(tmp_path):
    from pathlib import Path

    example = Path(__file__).parent.parent / "picup.example.toml"
    settings = config.load(environ={"PICUP_CONFIG": str(example)})
    text = example.read_text()
    import dataclasses

    for spec in dataclasses.fields(config.Settings):
        assert spec.metadata["key"] in text, f"{spec.name} is not documented in picup.example.toml"
        assert spec.metadata["env"] in text, f"{spec.metadata['env']} is not documented"
    assert settings.port == 8080
