"""Versioned schema steps, applied in order by ``picup migrate`` and at start.

The schema version is SQLite's ``user_version``. A step is plain SQL that is
never edited once released: a change to the schema is a new step at the end.
Before upgrading a database that already holds data, a snapshot is written
next to it with SQLite's online backup API.
"""

from __future__ import annotations

import logging
import sqlite3
import time

from . import snapshots

log = logging.getLogger(__name__)

STEPS: list[tuple[str, str]] = [
    (
        "accounts, media and albums",
        """
        CREATE TABLE meta (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL
        );
        CREATE TABLE user (
            id INTEGER PRIMARY KEY,
            username TEXT NOT NULL UNIQUE COLLATE NOCASE,
            display_name TEXT NOT NULL,
            password_hash TEXT NOT NULL,
            is_admin INTEGER NOT NULL DEFAULT 0,
            language TEXT,
            created_at DATETIME NOT NULL
        );
        CREATE TABLE session (
            id TEXT PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES user (id) ON DELETE CASCADE,
            csrf_token TEXT NOT NULL,
            remember INTEGER NOT NULL DEFAULT 0,
            created_at DATETIME NOT NULL,
            last_seen_at DATETIME NOT NULL,
            expires_at DATETIME NOT NULL,
            user_agent TEXT NOT NULL DEFAULT ''
        );
        CREATE INDEX session_user_id ON session (user_id);
        CREATE TABLE media (
            id INTEGER PRIMARY KEY,
            owner_id INTEGER NOT NULL REFERENCES user (id) ON DELETE RESTRICT,
            sha256 TEXT NOT NULL,
            size INTEGER NOT NULL,
            media_type TEXT NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('photo', 'video')),
            original_filename TEXT NOT NULL,
            taken_at DATETIME NOT NULL,
            taken_at_source TEXT NOT NULL,
            width INTEGER,
            height INTEGER,
            duration REAL,
            status TEXT NOT NULL DEFAULT 'pending',
            created_at DATETIME NOT NULL,
            trashed_at DATETIME
        );
        CREATE UNIQUE INDEX media_owner_id_sha256 ON media (owner_id, sha256);
        CREATE INDEX media_sha256 ON media (sha256);
        CREATE INDEX media_timeline ON media (owner_id, taken_at DESC, id DESC)
            WHERE trashed_at IS NULL AND status = 'ready';
        CREATE INDEX media_trashed ON media (trashed_at) WHERE trashed_at IS NOT NULL;
        CREATE TABLE album (
            id INTEGER PRIMARY KEY,
            owner_id INTEGER NOT NULL REFERENCES user (id) ON DELETE CASCADE,
            title TEXT NOT NULL,
            cover_id INTEGER REFERENCES media (id) ON DELETE SET NULL,
            created_at DATETIME NOT NULL,
            updated_at DATETIME NOT NULL
        );
        CREATE INDEX album_owner_id ON album (owner_id);
        CREATE TABLE album_media (
            album_id INTEGER NOT NULL REFERENCES album (id) ON DELETE CASCADE,
            media_id INTEGER NOT NULL REFERENCES media (id) ON DELETE CASCADE,
            added_by_id INTEGER REFERENCES user (id) ON DELETE SET NULL,
            added_at DATETIME NOT NULL,
            PRIMARY KEY (album_id, media_id)
        );
        CREATE INDEX album_media_media_id ON album_media (media_id);
        CREATE TABLE album_member (
            album_id INTEGER NOT NULL REFERENCES album (id) ON DELETE CASCADE,
            user_id INTEGER NOT NULL REFERENCES user (id) ON DELETE CASCADE,
            role TEXT NOT NULL CHECK (role IN ('view', 'add')),
            PRIMARY KEY (album_id, user_id)
        );
        CREATE INDEX album_member_user_id ON album_member (user_id);
        """,
    ),
    (
        "worker tasks, resumable uploads and API tokens",
        """
        CREATE TABLE task (
            id INTEGER PRIMARY KEY,
            kind TEXT NOT NULL,
            payload TEXT NOT NULL DEFAULT '{}',
            status TEXT NOT NULL DEFAULT 'queued',
            attempts INTEGER NOT NULL DEFAULT 0,
            max_attempts INTEGER NOT NULL DEFAULT 5,
            run_after DATETIME NOT NULL,
            lease_until DATETIME,
            last_error TEXT,
            created_at DATETIME NOT NULL,
            updated_at DATETIME NOT NULL
        );
        CREATE INDEX task_ready ON task (status, run_after);
        CREATE TABLE upload (
            id TEXT PRIMARY KEY,
            owner_id INTEGER NOT NULL REFERENCES user (id) ON DELETE CASCADE,
            length INTEGER NOT NULL,
            offset INTEGER NOT NULL DEFAULT 0,
            filename TEXT NOT NULL DEFAULT '',
            metadata TEXT NOT NULL DEFAULT '{}',
            album_id INTEGER REFERENCES album (id) ON DELETE SET NULL,
            media_id INTEGER REFERENCES media (id) ON DELETE SET NULL,
            duplicate INTEGER NOT NULL DEFAULT 0,
            created_at DATETIME NOT NULL,
            expires_at DATETIME NOT NULL
        );
        CREATE INDEX upload_expires_at ON upload (expires_at);
        CREATE TABLE api_token (
            id INTEGER PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES user (id) ON DELETE CASCADE,
            name TEXT NOT NULL,
            token_hash TEXT NOT NULL UNIQUE,
            created_at DATETIME NOT NULL,
            last_used_at DATETIME
        );
        """,
    ),
    (
        "media pipeline: renditions, placeholders, camera, place",
        """
        ALTER TABLE media ADD COLUMN render_status TEXT NOT NULL DEFAULT 'pending';
        ALTER TABLE media ADD COLUMN render_error TEXT;
        ALTER TABLE media ADD COLUMN damaged INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE media ADD COLUMN placeholder TEXT;
        ALTER TABLE media ADD COLUMN taken_at_offset INTEGER;
        ALTER TABLE media ADD COLUMN camera_make TEXT;
        ALTER TABLE media ADD COLUMN camera_model TEXT;
        ALTER TABLE media ADD COLUMN latitude REAL;
        ALTER TABLE media ADD COLUMN longitude REAL;
        ALTER TABLE media ADD COLUMN video_codec TEXT;
        ALTER TABLE media ADD COLUMN web_video INTEGER NOT NULL DEFAULT 0;
        CREATE INDEX media_render_status ON media (render_status) WHERE render_status != 'ready';
        """,
    ),
    (
        "slideshows and favourites",
        """
        CREATE TABLE favorite (
            user_id INTEGER NOT NULL REFERENCES user (id) ON DELETE CASCADE,
            media_id INTEGER NOT NULL REFERENCES media (id) ON DELETE CASCADE,
            created_at DATETIME NOT NULL,
            PRIMARY KEY (user_id, media_id)
        );
        CREATE TABLE slideshow (
            id INTEGER PRIMARY KEY,
            owner_id INTEGER NOT NULL REFERENCES user (id) ON DELETE CASCADE,
            nonce TEXT NOT NULL UNIQUE,
            token_hash TEXT NOT NULL UNIQUE,
            code TEXT UNIQUE,
            code_expires_at DATETIME,
            album_id INTEGER REFERENCES album (id) ON DELETE CASCADE,
            source TEXT NOT NULL,
            settings TEXT NOT NULL DEFAULT '{}',
            paused INTEGER NOT NULL DEFAULT 0,
            ends_at DATETIME,
            revoked_at DATETIME,
            created_at DATETIME NOT NULL,
            updated_at DATETIME NOT NULL,
            last_seen_at DATETIME
        );
        CREATE INDEX slideshow_owner ON slideshow (owner_id)
        """,
    ),
    (
        "two-step sign-in",
        """
        ALTER TABLE user ADD COLUMN totp_secret TEXT;
        ALTER TABLE user ADD COLUMN totp_pending TEXT;
        ALTER TABLE user ADD COLUMN totp_last_step INTEGER;
        CREATE TABLE recovery_code (
            id INTEGER PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES user (id) ON DELETE CASCADE,
            code_hash TEXT NOT NULL,
            used_at DATETIME
        );
        CREATE INDEX recovery_code_user ON recovery_code (user_id)
        """,
    ),
    (
        "integrity checks and backups",
        """
        ALTER TABLE media ADD COLUMN checked_at DATETIME;
        CREATE INDEX media_checked ON media (checked_at);
        CREATE TABLE job_run (
            id INTEGER PRIMARY KEY,
            kind TEXT NOT NULL,
            status TEXT NOT NULL,
            started_at DATETIME NOT NULL,
            finished_at DATETIME,
            items INTEGER NOT NULL DEFAULT 0,
            bytes INTEGER NOT NULL DEFAULT 0,
            problems INTEGER NOT NULL DEFAULT 0,
            repaired INTEGER NOT NULL DEFAULT 0,
            detail TEXT NOT NULL DEFAULT '{}',
            error TEXT
        );
        CREATE INDEX job_run_kind ON job_run (kind, started_at);
        CREATE TABLE stray_blob (
            key TEXT PRIMARY KEY,
            first_seen_at DATETIME NOT NULL
        );
        CREATE TABLE backup_gone (
            key TEXT PRIMARY KEY,
            gone_since DATETIME NOT NULL
        )
        """,
    ),
    (
        "live photos",
        """
        ALTER TABLE media ADD COLUMN live_id TEXT;
        ALTER TABLE media ADD COLUMN live_photo_id INTEGER REFERENCES media (id) ON DELETE SET NULL;
        CREATE INDEX media_live_id ON media (owner_id, live_id) WHERE live_id IS NOT NULL;
        CREATE INDEX media_live_photo ON media (live_photo_id) WHERE live_photo_id IS NOT NULL
        """,
    ),
    (
        "motion photos",
        """
        ALTER TABLE media ADD COLUMN motion_duration REAL
        """,
    ),
]

LATEST = len(STEPS)


class MigrationError(Exception):
    """The database cannot be brought to the version this Picup needs."""


def current_version(conn: sqlite3.Connection) -> int:
    return conn.execute("PRAGMA user_version").fetchone()[0]


def _switch_to_wal(conn: sqlite3.Connection, timeout: float) -> None:
    """SQLite answers "database is locked" at once, without waiting, when two processes
    switch a new database to WAL together (the web and the worker at first boot)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            conn.execute("PRAGMA journal_mode=wal")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def migrate(path: str, target: int = LATEST, keep_snapshots: int = 5) -> tuple[int, int]:
    """Bring the database at ``path`` to ``target``; return (from, to).

    A database with data is first copied to ``snapshots/`` (newest ``keep_snapshots`` kept),
    so ``picup migrate --rollback`` can put it back.
    """
    # Wait for the lock before anything else: the web and the worker may start together,
    # and switching to WAL needs the database to itself for a moment.
    conn = sqlite3.connect(path, isolation_level=None, timeout=15)
    try:
        conn.execute("PRAGMA busy_timeout=15000")
        _switch_to_wal(conn, timeout=15)
        start = current_version(conn)
        if start > LATEST:
            raise MigrationError(
                f"the database is at schema version {start}, newer than this Picup "
                f"(version {LATEST}); upgrade Picup instead of downgrading it"
            )
        if start >= target:
            return start, start
        if start > 0 and path != ":memory:":
            snapshot = snapshots.before_migration(path, start, keep=keep_snapshots)
            log.info("snapshot before migration", extra={"snapshot": str(snapshot)})
        for number in range(start + 1, target + 1):
            title, sql = STEPS[number - 1]
            conn.execute("BEGIN IMMEDIATE")
            if current_version(conn) >= number:  # another process (web or worker) got here first
                conn.execute("ROLLBACK")
                continue
            try:
                for statement in filter(str.strip, sql.split(";")):
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {number}")
                conn.execute("COMMIT")
            except Exception:
                conn.execute("ROLLBACK")
                raise
            log.info("schema migrated", extra={"version": number, "step": title})
        return start, target
    finally:
        conn.close()
