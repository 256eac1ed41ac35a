"""Bring a library back from its off-site backup onto an empty machine (``picup restore``).

1. Fetch the newest (or the chosen) database snapshot, decrypt, decompress,
   check it with ``PRAGMA integrity_check``, and put it in place.
2. Bring its schema up to date (the snapshot may come from an older Picup).
3. Fetch every original it refers to into the photo store; the store checks
   each SHA-256 before keeping it.
4. Forget what belonged to the old machine (thumbnails, half-finished
   uploads, queued tasks) and queue every rendition again for the worker.

It refuses to run over a library that has photos or accounts: restoring is
for an empty machine, never a way to overwrite one.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from . import backup, db, migrations, snapshots, storage
from .models import Media, Meta, Task, Upload, User

log = logging.getLogger(__name__)


class RestoreError(Exception):
    """The restore cannot go on; the message says why in plain words."""


@dataclass
class Restored:
    snapshot: str
    originals: int = 0
    bytes: int = 0
    already_there: int = 0
    missing: list[str] = field(default_factory=list)  # hashes the backup had no good copy of


def snapshots_available(settings) -> list[str]:
    target = _target(settings)
    _check(target)
    return target.snapshot_names()


def _target(settings) -> backup.Target:
    target = backup.open_target(settings)
    if target is None:
        raise RestoreError("no backup is set up: fill in the [backup] section of the configuration first")
    return target


def _check(target: backup.Target) -> dict:
    found = target.manifest()
    if found is None:
        raise RestoreError(f"{target.where()} holds no Picup backup")
    target.check_manifest(found)
    return found


def _refuse_unless_empty(path: str) -> None:
    if not Path(path).exists():
        return
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            users = conn.execute("SELECT COUNT(*) FROM user").fetchone()[0] if "user" in tables else 0
            media = conn.execute("SELECT COUNT(*) FROM media").fetchone()[0] if "media" in tables else 0
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise RestoreError(f"{path} exists but cannot be read ({exc}); move it away first") from None
    if users or media:
        raise RestoreError(
            f"{path} already holds a library ({users} accounts, {media} photos and videos). "
            "Restore only onto an empty machine: move the data folder away first."
        )


def restore(settings, *, snapshot: str | None = None,
            progress: Callable[[int, int], None] | None = None) -> Restored:
    target = _target(settings)
    manifest = _check(target)
    _refuse_unless_empty(settings.database_path)
    names = target.snapshot_names()
    if not names:
        raise RestoreError(f"{target.where()} has no database snapshot yet")
    chosen = snapshot or names[0]
    if chosen not in names:
        raise RestoreError(f"there is no snapshot called {chosen} (there are {len(names)}; newest {names[0]})")
    settings.data_path.mkdir(parents=True, exist_ok=True)
    settings.tmp_path.mkdir(parents=True, exist_ok=True)
    log.info("restore started", extra={"target": target.where(), "snapshot": chosen})
    with tempfile.TemporaryDirectory(dir=settings.tmp_path, prefix="restore-") as folder:
        packed = Path(folder) / "picup.db.gz"
        target.fetch(target.snapshot_object(chosen), packed)
        unpacked = snapshots.decompress(packed, Path(folder) / "picup.db")
        snapshots.verify(unpacked)
        _install_database(unpacked, settings.database_path)
    migrations.migrate(settings.database_path, keep_snapshots=settings.keep_migration_snapshots)
    db.open_database(settings.database_path)
    store = storage.open_store(settings)
    result = Restored(snapshot=chosen)
    with db.connection():
        store_id = Meta.get(Meta.key == "store_id").value
        if store_id != manifest.get("store_id"):
            raise RestoreError("the snapshot does not belong to the library this backup describes")
        _claim_store(store, store_id)
        _fetch_originals(settings, store, target, result, progress)
        _forget_the_old_machine()
    log.info("restore finished", extra={"snapshot": chosen, "originals": result.originals,
                                        "missing": len(result.missing)})
    return result


def _install_database(unpacked: Path, database: str) -> None:
    dest = Path(database)
    dest.parent.mkdir(parents=True, exist_ok=True)
    for leftover in (dest, Path(f"{dest}-wal"), Path(f"{dest}-shm")):  # an empty database, checked above
        leftover.unlink(missing_ok=True)
    partial = dest.with_name(dest.name + ".restoring")
    with open(unpacked, "rb") as src, open(partial, "wb") as out:
        while chunk := src.read(1024 * 1024):
            out.write(chunk)
        out.flush()
        os.fsync(out.fileno())
    os.replace(partial, dest)


def _claim_store(store: storage.BlobStore, store_id: str) -> None:
    """The restored database knows its store id: an empty store gets that marker."""
    marker = store.read_marker()
    if marker is None:
        store.write_marker(store_id)
    elif marker != store_id:
        raise RestoreError(f"the photo store {store!r} belongs to another Picup library; use an empty folder")


def _fetch_originals(settings, store, target: backup.Target, result: Restored, progress) -> None:
    wanted = dict(
        Media.select(Media.sha256, Media.size).where(Media.status == "ready").group_by(Media.sha256).tuples()
    )
    total, done = sum(wanted.values()), 0
    for sha256, size in wanted.items():
        key = storage.blob_key(sha256)
        if store.exists(key) and store.size(key) == size:
            result.already_there += 1
        else:
            fd, name = tempfile.mkstemp(dir=settings.tmp_path, prefix="restore-")
            os.close(fd)
            tmp = Path(name)
            try:
                target.fetch_original(sha256, tmp)
                store.put_file(str(tmp), sha256=sha256)  # verified again by the store
                result.originals += 1
                result.bytes += size
            except backup.NotInBackup:
                result.missing.append(sha256)
                log.error("original not in the backup", extra={"sha256": sha256})
            except backup.BackupError as exc:
                if "damaged" not in str(exc):
                    raise
                result.missing.append(sha256)
                log.error("original in the backup is damaged", extra={"sha256": sha256, "error": str(exc)})
            finally:
                tmp.unlink(missing_ok=True)
        done += size
        if progress:
            progress(done, total)


def _forget_the_old_machine() -> None:
    Task.delete().execute()
    Upload.delete().execute()  # their half-received bytes were on the old machine
    Media.update(render_status="pending", web_video=False).execute()
    log.info("renditions will be made again", extra={"items": Media.select().count(),
                                                     "accounts": User.select().count()})
