"""One settings object: defaults < config file < PICUP_* environment < flags.

The config file is ``/etc/picup/picup.toml`` unless ``PICUP_CONFIG`` names
another one. Every setting has a section and key in the file and one
environment variable; ``picup.example.toml`` at the repository root lists
them all with comments.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_CONFIG_FILE = "/etc/picup/picup.toml"


class ConfigError(Exception):
    """A setting has a value Picup cannot use; the message says which."""


def _setting(default, section: str, key: str, env: str, kind=str):
    return field(default=default, metadata={"section": section, "key": key, "env": env, "kind": kind})


def _size(text) -> int:
    """Parse ``10485760``, ``100M``, ``2G`` or ``512KiB`` into bytes."""
    if isinstance(text, int):
        return text
    units = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
    cleaned = str(text).strip().upper().removesuffix("IB").removesuffix("B")
    number, unit = cleaned, ""
    if cleaned and cleaned[-1] in units:
        number, unit = cleaned[:-1], cleaned[-1]
    try:
        return int(float(number) * units[unit])
    except ValueError:
        raise ConfigError(f"not a size: {text!r}") from None


def _bool(text) -> bool:
    if isinstance(text, bool):
        return text
    value = str(text).strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off", ""}:
        return False
    raise ConfigError(f"not a yes/no value: {text!r}")


@dataclass
class Settings:
    # [server]
    host: str = _setting("127.0.0.1", "server", "host", "PICUP_HOST")
    port: int = _setting(8080, "server", "port", "PICUP_PORT", int)
    threads: int = _setting(8, "server", "threads", "PICUP_THREADS", int)
    graceful_timeout: int = _setting(30, "server", "graceful_timeout", "PICUP_GRACEFUL_TIMEOUT", int)
    trusted_proxy: str = _setting("", "server", "trusted_proxy", "PICUP_TRUSTED_PROXY")
    trusted_proxy_count: int = _setting(1, "server", "trusted_proxy_count", "PICUP_TRUSTED_PROXY_COUNT", int)
    # top level
    data_dir: str = _setting("data", "", "data_dir", "PICUP_DATA_DIR")
    database: str = _setting("", "", "database", "PICUP_DATABASE")
    secret_key: str = _setting("", "", "secret_key", "PICUP_SECRET_KEY")
    log_level: str = _setting("INFO", "", "log_level", "PICUP_LOG_LEVEL")
    default_language: str = _setting("en", "", "default_language", "PICUP_DEFAULT_LANGUAGE")
    # [storage]
    storage_backend: str = _setting("local", "storage", "backend", "PICUP_STORAGE_BACKEND")
    storage_path: str = _setting("", "storage", "path", "PICUP_STORAGE_PATH")
    storage_endpoint: str = _setting("", "storage", "endpoint", "PICUP_STORAGE_ENDPOINT")
    storage_bucket: str = _setting("", "storage", "bucket", "PICUP_STORAGE_BUCKET")
    storage_prefix: str = _setting("", "storage", "prefix", "PICUP_STORAGE_PREFIX")
    storage_access_key: str = _setting("", "storage", "access_key", "PICUP_STORAGE_ACCESS_KEY")
    storage_secret_key: str = _setting("", "storage", "secret_key", "PICUP_STORAGE_SECRET_KEY")
    storage_secure: bool = _setting(True, "storage", "secure", "PICUP_STORAGE_SECURE", bool)
    storage_region: str = _setting("", "storage", "region", "PICUP_STORAGE_REGION")
    # [uploads]
    tmp_dir: str = _setting("", "uploads", "tmp_dir", "PICUP_TMP_DIR")
    max_upload_size: int = _setting(64 * 1024**3, "uploads", "max_size", "PICUP_MAX_UPLOAD_SIZE", "size")
    raw_upload_limit: int = _setting(
        100 * 1024**2, "uploads", "raw_max_size", "PICUP_RAW_UPLOAD_LIMIT", "size"
    )
    upload_expire_hours: int = _setting(24, "uploads", "expire_hours", "PICUP_UPLOAD_EXPIRE_HOURS", int)
    # [library]
    trash_days: int = _setting(30, "library", "trash_days", "PICUP_TRASH_DAYS", int)
    # [worker]
    worker_processes: int = _setting(0, "worker", "processes", "PICUP_WORKER_PROCESSES", int)
    # [integrity]
    check_days: int = _setting(30, "integrity", "check_days", "PICUP_CHECK_DAYS", int)
    stray_grace_days: int = _setting(14, "integrity", "stray_grace_days", "PICUP_STRAY_GRACE_DAYS", int)
    # [backup]
    backup_endpoint: str = _setting("", "backup", "endpoint", "PICUP_BACKUP_ENDPOINT")
    backup_bucket: str = _setting("", "backup", "bucket", "PICUP_BACKUP_BUCKET")
    backup_prefix: str = _setting("", "backup", "prefix", "PICUP_BACKUP_PREFIX")
    backup_access_key: str = _setting("", "backup", "access_key", "PICUP_BACKUP_ACCESS_KEY")
    backup_secret_key: str = _setting("", "backup", "secret_key", "PICUP_BACKUP_SECRET_KEY")
    backup_secure: bool = _setting(True, "backup", "secure", "PICUP_BACKUP_SECURE", bool)
    backup_region: str = _setting("", "backup", "region", "PICUP_BACKUP_REGION")
    backup_encryption_key: str = _setting("", "backup", "encryption_key", "PICUP_BACKUP_ENCRYPTION_KEY")
    backup_timeout: int = _setting(120, "backup", "timeout", "PICUP_BACKUP_TIMEOUT", int)
    backup_keep_deleted_days: int = _setting(
        90, "backup", "keep_deleted_days", "PICUP_BACKUP_KEEP_DELETED_DAYS", int
    )
    backup_keep_daily: int = _setting(14, "backup", "keep_daily", "PICUP_BACKUP_KEEP_DAILY", int)
    backup_keep_weekly: int = _setting(8, "backup", "keep_weekly", "PICUP_BACKUP_KEEP_WEEKLY", int)
    backup_keep_monthly: int = _setting(12, "backup", "keep_monthly", "PICUP_BACKUP_KEEP_MONTHLY", int)
    # [maintenance]
    nightly_hour: int = _setting(3, "maintenance", "nightly_hour", "PICUP_NIGHTLY_HOUR", int)
    keep_migration_snapshots: int = _setting(
        5, "maintenance", "keep_migration_snapshots", "PICUP_KEEP_MIGRATION_SNAPSHOTS", int
    )
    # [accounts]
    session_hours: int = _setting(12, "accounts", "session_hours", "PICUP_SESSION_HOURS", int)
    remember_days: int = _setting(365, "accounts", "remember_days", "PICUP_REMEMBER_DAYS", int)
    admin_two_step: bool = _setting(False, "accounts", "admin_two_step", "PICUP_ADMIN_TWO_STEP", bool)

    # ----------------------------------------------------------------- paths
    @property
    def data_path(self) -> Path:
        return Path(self.data_dir).expanduser().resolve()

    @property
    def database_path(self) -> str:
        if self.database == ":memory:":
            return self.database
        return str(Path(self.database).expanduser().resolve()) if self.database else str(
            self.data_path / "picup.db"
        )

    @property
    def storage_root(self) -> Path:
        return Path(self.storage_path).expanduser().resolve() if self.storage_path else self.data_path / "library"

    @property
    def backup_enabled(self) -> bool:
        return bool(self.backup_endpoint and self.backup_bucket)

    @property
    def snapshot_path(self) -> Path:
        """Where database snapshots taken before a migration are kept."""
        return self.data_path / "snapshots"

    @property
    def tmp_path(self) -> Path:
        return Path(self.tmp_dir).expanduser().resolve() if self.tmp_dir else self.data_path / "tmp"

    def validate(self) -> "Settings":
        if self.storage_backend not in {"local", "s3"}:
            raise ConfigError(f"storage.backend must be 'local' or 's3', not {self.storage_backend!r}")
        if self.storage_backend == "s3" and not (self.storage_endpoint and self.storage_bucket):
            raise ConfigError("storage.backend = 's3' needs storage.endpoint and storage.bucket")
        if bool(self.backup_endpoint) != bool(self.backup_bucket):
            raise ConfigError("a backup needs both backup.endpoint and backup.bucket")
        if not 0 <= self.nightly_hour <= 23:
            raise ConfigError(f"maintenance.nightly_hour must be between 0 and 23, not {self.nightly_hour}")
        if self.check_days < 1:
            raise ConfigError("integrity.check_days must be at least 1")
        if not 0 < self.port < 65536:
            raise ConfigError(f"server.port must be between 1 and 65535, not {self.port}")
        if self.default_language not in {"en", "ko"}:
            raise ConfigError("default_language must be 'en' or 'ko'")
        return self

    def ensure_secret_key(self) -> str:
        """Return the configured secret, or one generated once and kept 0600 in the data folder."""
        if self.secret_key:
            return self.secret_key
        path = self.data_path / "secret_key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_urlsafe(48))
                fh.flush()
                os.fsync(fh.fileno())
        os.chmod(path, 0o600)
        self.secret_key = path.read_text().strip()
        return self.secret_key


def _convert(spec: dataclasses.Field, value):
    kind = spec.metadata["kind"]
    try:
        if kind == "size":
            return _size(value)
        if kind is bool:
            return _bool(value)
        if kind is int:
            return int(value)
        return str(value)
    except (ValueError, TypeError):
        raise ConfigError(f"{spec.metadata['env']}: not a whole number: {value!r}") from None


def _from_file(path: Path) -> dict:
    try:
        with path.open("rb") as fh:
            document = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    values = {}
    known = set()
    for spec in dataclasses.fields(Settings):
        section, key = spec.metadata["section"], spec.metadata["key"]
        table = document.get(section, {}) if section else document
        known.add((section, key))
        if isinstance(table, dict) and key in table:
            values[spec.name] = _convert(spec, table[key])
    for name, value in document.items():
        if isinstance(value, dict):
            for key in value:
                if (name, key) not in known:
                    raise ConfigError(f"{path}: unknown setting [{name}] {key}")
        elif ("", name) not in known:
            raise ConfigError(f"{path}: unknown setting {name}")
    return values


def load(overrides: dict | None = None, environ=None) -> Settings:
    """Build the settings from defaults, the config file, the environment and ``overrides``."""
    environ = os.environ if environ is None else environ
    values: dict = {}
    config_file = environ.get("PICUP_CONFIG")
    if config_file:
        if not Path(config_file).is_file():
            raise ConfigError(f"PICUP_CONFIG names {config_file}, which does not exist")
        values.update(_from_file(Path(config_file)))
    elif Path(DEFAULT_CONFIG_FILE).is_file():
        values.update(_from_file(Path(DEFAULT_CONFIG_FILE)))
    for spec in dataclasses.fields(Settings):
        env = spec.metadata["env"]
        if env in environ:
            values[spec.name] = _convert(spec, environ[env])
    for name, value in (overrides or {}).items():
        if value is not None:
            spec = next(s for s in dataclasses.fields(Settings) if s.name == name)
            values[name] = _convert(spec, value)
    return Settings(**values).validate()
