"""Consistent copies of the database, made with SQLite's online backup API.

A file copy of a live SQLite database (with its WAL) can be torn; the backup
API copies a consistent state while the web and the worker keep running.
Used before every migration (kept in ``<data>/snapshots``, newest few, for
``picup migrate --rollback``) and by the off-site backup.
"""

from __future__ import annotations

import datetime as dt
import gzip
import logging
import os
import shutil
import sqlite3
from pathlib import Path

log = logging.getLogger(__name__)

SUFFIX = ".bak"


class SnapshotError(Exception):
    """A snapshot could not be made or used; the message says why."""


def take(database: str, dest: Path) -> Path:
    """Copy the database at ``database`` to ``dest`` (a new file), consistently, and fsync it."""
    dest = Path(dest)
    partial = dest.with_name(dest.name + ".partial")
    partial.unlink(missing_ok=True)
    source = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30)
    try:
        target = sqlite3.connect(partial)
        try:
            source.backup(target, pages=1024)  # in steps, so writers are never held up for long
            target.execute("PRAGMA journal_mode=delete")  # one self-contained file
        finally:
            target.close()
    except sqlite3.Error as exc:
        partial.unlink(missing_ok=True)
        raise SnapshotError(f"could not copy the database: {exc}") from exc
    finally:
        source.close()
    _fsync(partial)
    os.replace(partial, dest)
    return dest


def verify(path: Path) -> int:
    """Check a snapshot file is a sound SQLite database; return its schema version."""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            result = conn.execute("PRAGMA integrity_check").fetchone()[0]
            version = conn.execute("PRAGMA user_version").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise SnapshotError(f"{path.name} is not a readable database: {exc}") from exc
    if result != "ok":
        raise SnapshotError(f"{path.name} is damaged: {result}")
    return version


def restore_into(snapshot: Path, database: str) -> None:
    """Make the database at ``database`` hold exactly what ``snapshot`` holds.

    Uses the backup API in the other direction, so it takes SQLite's locks
    (a running Picup waits or gets "busy") and the WAL stays consistent.
    """
    verify(snapshot)
    source = sqlite3.connect(f"file:{snapshot}?mode=ro", uri=True)
    try:
        target = sqlite3.connect(database, timeout=30)
        try:
            source.backup(target)
        finally:
            target.close()
    except sqlite3.Error as exc:
        raise SnapshotError(f"could not restore the database: {exc}") from exc
    finally:
        source.close()


def compress(path: Path, dest: Path) -> Path:
    with open(path, "rb") as src, gzip.open(dest, "wb", compresslevel=6) as out:
        shutil.copyfileobj(src, out, 1024 * 1024)
    return dest


def decompress(path: Path, dest: Path) -> Path:
    try:
        with gzip.open(path, "rb") as src, open(dest, "wb") as out:
            shutil.copyfileobj(src, out, 1024 * 1024)
    except (OSError, EOFError) as exc:
        dest.unlink(missing_ok=True)
        raise SnapshotError(f"{path.name} is not a complete compressed snapshot: {exc}") from exc
    return dest


# ------------------------------------------------------------ before migrations
def stamp() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")


def folder_for(database: str) -> Path:
    """Migration snapshots live in ``snapshots/`` next to the database."""
    return Path(database).parent / "snapshots"


def before_migration(database: str, version: int, keep: int = 5) -> Path:
    """Snapshot the database (at schema ``version``) before a migration; keep the newest ``keep``."""
    folder = folder_for(database)
    folder.mkdir(parents=True, exist_ok=True)
    path = take(database, folder / f"{Path(database).name}.v{version}-{stamp()}{SUFFIX}")
    for old in listed(database)[keep:]:
        old.unlink(missing_ok=True)
    return path


def listed(database: str) -> list[Path]:
    """Migration snapshots of this database, newest first."""
    folder = folder_for(database)
    if not folder.is_dir():
        return []
    prefix = Path(database).name + ".v"
    found = [p for p in folder.iterdir() if p.name.startswith(prefix) and p.name.endswith(SUFFIX)]
    return sorted(found, key=lambda p: p.name.rsplit("-", 1)[-1], reverse=True)


def _fsync(path: Path) -> None:
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())
    fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
