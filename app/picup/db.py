"""The one place that opens, configures and closes the SQLite database.

Models bind to :data:`database`, a proxy; :func:`open_database` points it at
a real file. Write transactions begin ``IMMEDIATE`` so that two writers queue
on the busy timeout instead of failing half-way (one writer at a time).
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import peewee

from .errors import PicupError

database = peewee.DatabaseProxy()
# One idle connection kept open for the life of the process: while it is open the
# WAL and shared-memory files are never deleted on close, so a request can still
# open the database (and show photos) when the disk has no byte left to recreate them.
_keeper: sqlite3.Connection | None = None

PRAGMAS = {
    "journal_mode": "wal",
    "synchronous": 2,  # FULL: a committed upload survives a power cut
    "foreign_keys": 1,
    "busy_timeout": 15_000,
    "cache_size": -8_000,  # 8 MiB page cache per connection; small boxes
    "temp_store": 1,  # temp tables on disk, not RAM
}


class DiskFull(peewee.OperationalError, PicupError):
    """SQLite found no room to write: a person gets the plain "the disk is full" answer."""

    def __init__(self, cause: Exception):
        PicupError.__init__(self, "storage_full")
        self.orig = cause


@contextlib.contextmanager
def _disk_full():
    try:
        yield
    except peewee.OperationalError as exc:
        if "database or disk is full" in str(exc):
            raise DiskFull(exc) from exc
        raise


class _SqliteDatabase(peewee.SqliteDatabase):
    def execute_sql(self, sql, params=None, *args, **kwargs):
        with _disk_full():
            return super().execute_sql(sql, params, *args, **kwargs)

    def commit(self):
        with _disk_full():
            return super().commit()

    def rollback(self):
        try:
            return super().rollback()
        except peewee.OperationalError as exc:
            # After a full disk SQLite has already rolled the transaction back itself.
            if "no transaction is active" not in str(exc):
                raise


def open_database(path: str) -> peewee.SqliteDatabase:
    """Open ``path`` with Picup's pragmas and make the model proxy use it."""
    global _keeper
    if path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    db = _SqliteDatabase(path, pragmas=PRAGMAS, lock_type="IMMEDIATE")
    database.initialize(db)
    if _keeper is not None:
        _keeper.close()
        _keeper = None
    if path != ":memory:":
        _keeper = sqlite3.connect(path, timeout=PRAGMAS["busy_timeout"] / 1000, check_same_thread=False)
        _keeper.execute("SELECT count(*) FROM sqlite_master").fetchall()  # opens the WAL: now it stays
    return db


@contextlib.contextmanager
def connection():
    """Hold a connection for one request or one job, and close it afterwards."""
    opened = database.connect(reuse_if_open=True)
    try:
        yield database
    finally:
        if opened and not database.is_closed():
            database.close()
