"""Resumable uploads (the rules behind the tus 1.0 endpoints).

The bytes of an upload in progress live in ``<tmp>/uploads/<id>.part``; its
row records how far it got, so an upload survives a server restart. When the
last byte arrives the file is handed to :func:`picup.library.ingest`.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import fcntl
import hashlib
import json
import logging
import os
import secrets
import shutil
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import BinaryIO

from . import library, storage
from .db import database
from .errors import PicupError
from .hashing import HashingBeside
from .models import Album, Upload, User, utcnow
from .storage.local import INCOMING

log = logging.getLogger(__name__)

CHECKSUM_ALGORITHMS = {"sha1": hashlib.sha1, "sha256": hashlib.sha256, "md5": hashlib.md5}

# SHA-256 state of uploads in progress, so finishing one does not re-read it.
# Lost on restart; then the finished file is hashed once more from disk.
_progress: "OrderedDict[str, tuple[int, object]]" = OrderedDict()
_locks: dict[str, threading.Lock] = {}
_guard = threading.Lock()
_MAX_REMEMBERED = 64


def _lock(upload_id: str) -> threading.Lock:
    with _guard:
        return _locks.setdefault(upload_id, threading.Lock())


def _forget(upload_id: str) -> None:
    with _guard:
        _progress.pop(upload_id, None)
        _locks.pop(upload_id, None)


def _remember(upload_id: str, offset: int, hasher) -> None:
    with _guard:
        _progress[upload_id] = (offset, hasher)
        _progress.move_to_end(upload_id)
        while len(_progress) > _MAX_REMEMBERED:
            _progress.popitem(last=False)


def _hasher_at(upload_id: str, offset: int, part: Path):
    with _guard:
        remembered = _progress.get(upload_id)
    if remembered and remembered[0] == offset:
        return remembered[1]
    hasher = hashlib.sha256()  # after a restart: catch up from the bytes on disk
    with open(part, "rb") as fh:
        left = offset
        while left and (chunk := fh.read(min(library.CHUNK, left))):
            hasher.update(chunk)
            left -= len(chunk)
    return hasher


def parse_metadata(header: str | None) -> dict[str, str]:
    """``Upload-Metadata: filename ZG9nLmpwZw==,album MQ==`` as a dict."""
    result = {}
    for pair in (header or "").split(","):
        pair = pair.strip()
        if not pair:
            continue
        key, _, value = pair.partition(" ")
        try:
            result[key] = base64.b64decode(value.strip(), validate=True).decode("utf-8") if value else ""
        except (binascii.Error, UnicodeDecodeError):
            raise PicupError("invalid_value", field="Upload-Metadata") from None
    return result


def parse_checksum(header: str | None):
    if not header:
        return None
    algorithm, _, value = header.strip().partition(" ")
    if algorithm not in CHECKSUM_ALGORITHMS:
        raise PicupError("invalid_value", field="Upload-Checksum")
    try:
        return algorithm, base64.b64decode(value, validate=True)
    except binascii.Error:
        raise PicupError("invalid_value", field="Upload-Checksum") from None


def last_modified_from(value: str | None) -> dt.datetime | None:
    """A browser's ``File.lastModified`` (milliseconds since 1970) as naive UTC."""
    if not value:
        return None
    try:
        millis = int(float(value))
        moment = dt.datetime.fromtimestamp(millis / 1000, dt.UTC).replace(tzinfo=None)
    except (ValueError, OverflowError, OSError):
        return None
    return moment if moment.year >= 1970 and moment <= utcnow() + dt.timedelta(days=2) else None


def part_path(settings, upload_id: str) -> Path:
    return settings.tmp_path / "uploads" / f"{upload_id}.part"


def create(user: User, length: int, metadata: dict[str, str], settings) -> Upload:
    if length < 0:
        raise PicupError("invalid_value", field="Upload-Length")
    if length == 0:
        raise PicupError("empty_file")
    name = library.clean_filename(metadata.get("filename") or metadata.get("name"))
    if length > settings.max_upload_size:
        raise PicupError("too_large", name=name, limit=library.human_size(settings.max_upload_size))
    album = None
    if metadata.get("album"):
        try:
            album = library.get_album(user, int(metadata["album"]), "add")
        except ValueError:
            raise PicupError("invalid_value", field="album") from None
    upload_id = secrets.token_hex(16)
    part = part_path(settings, upload_id)
    part.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(fd)
    try:
        return Upload.create(
            id=upload_id,
            owner=user,
            length=length,
            filename=name,
            metadata=json.dumps(metadata),
            album=album,
            expires_at=utcnow() + dt.timedelta(hours=settings.upload_expire_hours),
        )
    except BaseException:
        part.unlink(missing_ok=True)
        raise


def get(user: User, upload_id: str) -> Upload:
    upload = Upload.get_or_none((Upload.id == upload_id) & (Upload.owner == user))
    if upload is None:  # never there, or someone else's: the same answer
        raise PicupError("not_found")
    if upload.expires_at < utcnow():
        raise PicupError("upload_gone")
    return upload


def append(
    store,
    user: User,
    upload_id: str,
    offset: int,
    body: BinaryIO,
    settings,
    checksum=None,
) -> tuple[Upload, library.IngestResult | None]:
    """Add one chunk at ``offset``; ingest the file when it is complete."""
    get(user, upload_id)  # unknown ids and other people's uploads never get a lock
    with _lock(upload_id):
        upload = get(user, upload_id)
        if offset != upload.offset or upload.media_id is not None:
            raise PicupError("offset_mismatch")
        part = part_path(settings, upload.id)
        if not part.exists():
            raise PicupError("upload_gone")
        hasher = _hasher_at(upload.id, offset, part).copy()
        chunk_check = CHECKSUM_ALGORITHMS[checksum[0]]() if checksum else None
        written = 0
        try:
            with open(part, "r+b") as out, HashingBeside(hasher, *filter(None, [chunk_check])) as hashing:
                out.seek(offset)
                while data := body.read(library.CHUNK):
                    written += len(data)
                    if offset + written > upload.length:
                        raise PicupError("invalid_value", field="Upload-Offset")
                    library.check_room(part.parent, len(data))
                    hashing.update(data)
                    out.write(data)
                hashing.close()
                if chunk_check and chunk_check.digest() != checksum[1]:
                    raise PicupError("checksum_mismatch")
                out.flush()
                os.fsync(out.fileno())
        except BaseException as exc:
            # Keep only what was acknowledged before this chunk.
            os.truncate(part, offset)
            if isinstance(exc, (OSError, storage.StorageFull)):
                raise library.storage_error(exc) from exc
            raise
        new_offset = offset + written
        upload.offset = new_offset
        if new_offset < upload.length:
            Upload.update(offset=new_offset).where(Upload.id == upload.id).execute()
            _remember(upload.id, new_offset, hasher)
            return upload, None
        # The last offset is recorded together with the media it became: an upload cut off
        # while being kept (kill -9) never tells a tus client it is complete when it is not.
        return upload, _finish(store, upload, part, hasher.hexdigest(), settings)


def _finish(store, upload: Upload, part: Path, sha256: str, settings) -> library.IngestResult:
    metadata = json.loads(upload.metadata)
    received = library.Received(path=part, size=upload.length, sha256=sha256)
    album = Album.get_or_none(Album.id == upload.album_id) if upload.album_id else None
    try:
        result = library.ingest(
            store,
            received,
            owner=upload.owner,
            filename=upload.filename,
            album=album,
            last_modified=last_modified_from(metadata.get("lastModified") or metadata.get("last_modified")),
        )
    except BaseException:
        # ingest consumed the file; the upload has nothing left to resume.
        Upload.delete().where(Upload.id == upload.id).execute()
        _forget(upload.id)
        raise
    Upload.update(offset=upload.length, media=result.media.id, duplicate=result.duplicate).where(
        Upload.id == upload.id
    ).execute()
    _forget(upload.id)
    upload.media = result.media
    upload.duplicate = result.duplicate
    return result


def terminate(user: User, upload_id: str, settings) -> None:
    get(user, upload_id)
    with _lock(upload_id):
        upload = get(user, upload_id)
        with database.atomic():
            upload.delete_instance()
        part_path(settings, upload.id).unlink(missing_ok=True)
    _forget(upload_id)


def expire(settings) -> int:
    """Remove uploads past their expiry, and temporary files nobody has touched for an hour."""
    now = utcnow()
    gone = 0
    for upload in list(Upload.select().where(Upload.expires_at < now)):
        with _lock(upload.id):
            part_path(settings, upload.id).unlink(missing_ok=True)
            upload.delete_instance()
        _forget(upload.id)
        gone += 1
    return gone + _remove_strays(settings, min_age=STRAY_AGE)


# ------------------------------------------------------- after a crash (kill -9)
STRAY_AGE = 3600  # seconds untouched before a temporary file is taken for a dead process's
_running: tuple[Path, int] | None = None  # this process's shared hold on <data>/locks/running.lock


def clean_after_crash(settings, store) -> int:
    """At start: remove what a Picup process killed half-way (kill -9, power cut) left behind.

    Every Picup process holds a shared ``flock`` on ``<data>/locks/running.lock`` for
    as long as it lives; the kernel drops it when the process dies, however it dies.
    A process that starts and can take that lock exclusively knows no other one is
    running, so every temporary file, every byte past an upload's acknowledged offset
    and every "pending" row is a leftover, and goes now. With another process
    running (the worker beside the web) only files an hour old go, as in the
    worker's hourly :func:`expire`; older pending rows go with the trash purge.
    """
    fd = _running_lock(settings)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        alone = True
    except BlockingIOError:
        alone = False
    try:
        if not alone:
            gone = _remove_strays(settings, min_age=STRAY_AGE)
        else:
            gone = _remove_strays(settings, min_age=0, everything=True)
            gone += _tidy_unfinished(settings)
            gone += library.clear_stale_pending(store, older_than=dt.timedelta(0))
    finally:
        fcntl.flock(fd, fcntl.LOCK_SH)  # from now on this process counts as running
    if gone:
        log.info("leftovers of an interrupted run removed", extra={"items": gone, "alone": alone})
    return gone


def _running_lock(settings) -> int:
    global _running
    path = settings.data_path / "locks" / "running.lock"
    if _running is not None and _running[0] == path:
        return _running[1]
    if _running is not None:  # one data folder per process; tests open many in turn
        os.close(_running[1])
        _running = None
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)  # not inherited by child processes
    _running = (path, fd)
    return fd


def _remove_strays(settings, *, min_age: float, everything: bool = False) -> int:
    """Part files no unfinished upload owns, and the temporary files of receiving, rendering
    and storing, untouched for ``min_age`` seconds. A running render of this very process
    is never taken (its folder names the process). ``everything`` also takes the temporary
    folders of jobs that may run for hours (backup, restore): only when no other process runs."""
    now = time.time()
    mine = f"-pid{os.getpid()}-"

    def stale(path: Path) -> bool:
        if mine in path.name:
            return False
        try:
            return min_age <= 0 or now - path.stat().st_mtime >= min_age
        except FileNotFoundError:
            return False

    gone = 0
    folder = settings.tmp_path / "uploads"
    if folder.is_dir():
        live = {u.id for u in Upload.select(Upload.id).where(Upload.media.is_null())}
        for part in folder.glob("*.part"):
            if part.stem not in live and stale(part):
                part.unlink(missing_ok=True)
                gone += 1
    patterns = ["recv-*", "render-*", "original-*"] + (["backup-*", "restore-*", "check-restore-*"] if everything else [])
    strays = [path for pattern in patterns for path in settings.tmp_path.glob(pattern)]
    if settings.storage_backend == "local":
        strays += (settings.storage_root / INCOMING).glob("tmp-*")
    for stray in strays:
        if not stale(stray):
            continue
        if stray.is_dir():
            shutil.rmtree(stray, ignore_errors=True)
        else:
            stray.unlink(missing_ok=True)
        gone += 1
    return gone


def _tidy_unfinished(settings) -> int:
    """Unfinished uploads as they were acknowledged: bytes past the recorded offset (a chunk
    cut off before it was counted) are cut; an upload whose part file is gone (cut off while
    being kept) is forgotten, so its client starts it again instead of waiting for it."""
    tidied = 0
    for upload in list(Upload.select().where(Upload.media.is_null())):
        part = part_path(settings, upload.id)
        try:
            size = part.stat().st_size
        except FileNotFoundError:
            upload.delete_instance()
            tidied += 1
            continue
        if size > upload.offset:
            os.truncate(part, upload.offset)
            tidied += 1
    return tidied
