"""The schema is versioned; an older database upgrades with its data intact."""

import sqlite3

import pytest

from picup import db, migrations, models


def test_a_new_database_gets_every_step(tmp_path):
    path = str(tmp_path / "picup.db")
    assert migrations.migrate(path) == (0, migrations.LATEST)
    assert migrations.migrate(path) == (migrations.LATEST, migrations.LATEST)
    assert not list(tmp_path.glob("*.bak")), "a new database needs no snapshot"


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

    snapshots = list(tmp_path.glob("picup.db.v1-*.bak"))
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

    path = str(tmp_path / "picup.db")
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: migrations.migrate(path), range(4)))
    assert all(after == migrations.LATEST for _before, after in results)
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == migrations.LATEST
