"""The one place that opens, configures and closes the SQLite database.

Models bind to :data:`database`, a proxy; :func:`open_database` points it at
a real file. Write transactions begin ``IMMEDIATE`` so that two writers queue
on the busy timeout instead of failing half-way (one writer at a time).
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import peewee

database = peewee.DatabaseProxy()

PRAGMAS = {
    "journal_mode": "wal",
    "synchronous": 2,  # FULL: a committed upload survives a power cut
    "foreign_keys": 1,
    "busy_timeout": 15_000,
    "cache_size": -8_000,  # 8 MiB page cache per connection; small boxes
    "temp_store": 1,  # temp tables on disk, not RAM
}


def open_database(path: str) -> peewee.SqliteDatabase:
    """Open ``path`` with Picup's pragmas and make the model proxy use it."""
    if path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    db = peewee.SqliteDatabase(path, pragmas=PRAGMAS, lock_type="IMMEDIATE")
    database.initialize(db)
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
