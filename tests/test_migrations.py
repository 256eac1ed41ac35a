"""The schema is versioned; an older database upgrades with its data intact."""

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from picup import db, migrations, models


def test_a_new_database_gets_every_step(tmp_path):
    path = str(tmp_path / "picup.db")
    assert migrations.migrate(path) == (0, migrations.LATEST)
    assert migrations.migrate(path) == (migrations.LATEST, migrations.LATEST)
    assert not list(tmp_path.glob("**/*.bak")), "a new database needs no snapshot"


def test_version_1_database_upgrades_with_data_intact(tmp_path):
    path = str(tmp_path / "picup.db")
    migrations.migrate(path, target=1)
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO user (id, username, display_name, password_hash, is_admin, created_at) "
                     "VALUES (1, 'grandma', 'Grandma', 'x', 1, '2024-01-01 10:00:00')")
        conn.execute("INSERT INTO media (id, owner_id, sha256, size, media_type, kind, original_filename, "
                     "taken_at, taken_at_source, status, created_at) VALUES (7, 1, ?, 10, 'image/jpeg', "
                     "'photo', '제주도.jpg', '1998-08-15 09:00:00', 'exif', 'ready', '2024-01-01 10:00:00')",
                     ("a" * 64,))
        conn.execute("INSERT INTO album (id, owner_id, title, cover_id, created_at, updated_at) "
                     "VALUES (3, 1, 'Summer', 7, '2024-01-01', '2024-01-01')")
        conn.execute("INSERT INTO album_media (album_id, media_id, added_at) VALUES (3, 7, '2024-01-01')")
    conn.close()

    assert migrations.migrate(path) == (1, migrations.LATEST)

    snapshots = list(tmp_path.glob("snapshots/picup.db.v1-*.bak"))
    assert len(snapshots) == 1, "a snapshot is taken before upgrading a database with data"
    with sqlite3.connect(snapshots[0]) as snap:
        assert snap.execute("SELECT original_filename FROM media").fetchone() == ("제주도.jpg",)
    db.open_database(path)
    with db.connection():
        media = models.Media.get_by_id(7)
        assert (media.original_filename, media.owner.username) == ("제주도.jpg", "grandma")
        assert str(media.taken_at) == "1998-08-15 09:00:00"
        assert models.Album.get_by_id(3).cover_id == 7
        # the newer tables work on the upgraded database
        models.Task.create(kind="noop")
        assert models.Task.select().count() == 1


def test_a_newer_database_is_refused_not_damaged(tmp_path):
    path = str(tmp_path / "picup.db")
    migrations.migrate(path)
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {migrations.LATEST + 1}")
    conn.close()
    with pytest.raises(migrations.MigrationError, match="newer than this Picup"):
        migrations.migrate(path)


def test_models_match_the_migrated_schema(tmp_path):
    path = str(tmp_path / "picup.db")
    migrations.migrate(path)
    with sqlite3.connect(path) as conn:
        for model in models.ALL_MODELS:
            table = model._meta.table_name
            columns = {row[1] for row in conn.execute(f'PRAGMA table_info("{table}")')}
            fields = {f.column_name for f in model._meta.sorted_fields}
            assert columns == fields, f"{table}: schema {sorted(columns)} != model {sorted(fields)}"


def test_the_database_runs_with_wal_full_sync_and_foreign_keys(tmp_path):
    path = str(tmp_path / "picup.db")
    migrations.migrate(path)
    db.open_database(path)
    with db.connection() as database:
        pragma = lambda name: database.execute_sql(f"PRAGMA {name}").fetchone()[0]  # noqa: E731
        assert pragma("journal_mode") == "wal"
        assert pragma("synchronous") == 2
        assert pragma("foreign_keys") == 1
        assert pragma("busy_timeout") >= 5000


def test_web_and_worker_starting_together_migrate_once(tmp_path):
    """Under systemd both units start at boot and both run the migrations."""
    from concurrent.futures import ThreadPoolExecutor

    for round_ in range(40):  # switching a new database to WAL together failed now and then
        path = str(tmp_path / f"picup-{round_}.db")
        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(lambda _: migrations.migrate(path), range(4)))
        assert all(after == migrations.LATEST for _before, after in results)
        with sqlite3.connect(path) as conn:
            assert conn.execute("PRAGMA user_version").fetchone()[0] == migrations.LATEST


def _version_1_with_grandma(path: str) -> None:
    migrations.migrate(path, target=1)
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO user (id, username, display_name, password_hash, is_admin, created_at) "
                     "VALUES (1, 'grandma', 'Grandma', 'x', 1, '2024-01-01 10:00:00')")
    conn.close()


def test_picup_migrate_rollback_puts_back_the_database_from_before_the_upgrade(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    path = str(data / "picup.db")
    _version_1_with_grandma(path)
    picup = [str(Path(sys.executable).parent / "picup"), "migrate", "--data", str(data)]
    env = {"PATH": "/usr/bin:/bin"}
    upgraded = subprocess.run(picup, env=env, capture_output=True, text=True)
    assert upgraded.returncode == 0 and f"from schema version 1 to {migrations.LATEST}" in upgraded.stdout
    with sqlite3.connect(path) as conn:  # the new version is used: a new account
        conn.execute("INSERT INTO user (id, username, display_name, password_hash, is_admin, created_at) "
                     "VALUES (2, 'grandpa', 'Grandpa', 'x', 0, '2026-01-01 10:00:00')")
    conn.close()

    listed = subprocess.run(picup + ["--list"], env=env, capture_output=True, text=True)
    assert listed.returncode == 0 and "(schema version 1," in listed.stdout
    asked = subprocess.run(picup + ["--rollback"], env=env, input="n\n", capture_output=True, text=True)
    assert asked.returncode != 0, "it asks first, and no means no"
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == migrations.LATEST
    conn.close()

    rolled = subprocess.run(picup + ["--rollback", "--yes"], env=env, capture_output=True, text=True)
    assert rolled.returncode == 0, rolled.stderr
    assert "Rolled back to schema version 1" in rolled.stdout
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
        assert conn.execute("SELECT username FROM user").fetchall() == [("grandma",)]
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
    kept = list((data / "snapshots").glob("before-rollback-*.bak"))
    assert len(kept) == 1, "the rollback itself can be undone"
    with sqlite3.connect(kept[0]) as conn:
        assert len(conn.execute("SELECT username FROM user").fetchall()) == 2
    conn.close()


def test_only_the_newest_few_snapshots_are_kept(tmp_path):
    from picup import snapshots

    path = str(tmp_path / "picup.db")
    _version_1_with_grandma(path)
    for version in range(1, 9):
        snapshots.before_migration(path, version, keep=3)
    left = snapshots.listed(path)
    assert [p.name.split("-")[0] for p in left] == ["picup.db.v8", "picup.db.v7", "picup.db.v6"]


def test_rollback_with_no_snapshot_says_so(tmp_path):
    picup = [str(Path(sys.executable).parent / "picup"), "migrate", "--rollback", "--yes", "--data", str(tmp_path)]
    done = subprocess.run(picup, env={"PATH": "/usr/bin:/bin"}, capture_output=True, text=True)
    assert done.returncode == 1 and "no snapshot to roll back to" in done.stderr
