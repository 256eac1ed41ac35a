"""Resumable uploads (the rules behind the tus 1.0 endpoints).

The bytes of an upload in progress live in ``<tmp>/uploads/<id>.part``; its
row records how far it got, so an upload survives a server restart. When the
last byte arrives the file is handed to :func:`picup.library.ingest`.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
import logging
import os
import secrets
import shutil
import threading
from collections import OrderedDict
from pathlib import Path
from typing import BinaryIO

from . import library
from .db import database
from .errors import PicupError
from .models import Album, Upload, User, utcnow

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
            with open(part, "r+b") as out:
                out.seek(offset)
                while data := body.read(library.CHUNK):
                    written += len(data)
                    if offset + written > upload.length:
                        raise PicupError("invalid_value", field="Upload-Offset")
                    hasher.update(data)
                    if chunk_check:
                        chunk_check.update(data)
                    out.write(data)
                if chunk_check and chunk_check.digest() != checksum[1]:
                    raise PicupError("checksum_mismatch")
                out.flush()
                os.fsync(out.fileno())
        except BaseException as exc:
            # Keep only what was acknowledged before this chunk.
            os.truncate(part, offset)
            if isinstance(exc, OSError):
                raise library.storage_error(exc) from exc
            raise
        new_offset = offset + written
        Upload.update(offset=new_offset).where(Upload.id == upload.id).execute()
        _remember(upload.id, new_offset, hasher)
        upload.offset = new_offset
        if new_offset < upload.length:
            return upload, None
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
    Upload.update(media=result.media.id, duplicate=result.duplicate).where(Upload.id == upload.id).execute()
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
    """Remove uploads past their expiry, and part files no upload owns."""
    now = utcnow()
    gone = 0
    for upload in Upload.select().where(Upload.expires_at < now):
        with _lock(upload.id):
            part_path(settings, upload.id).unlink(missing_ok=True)
            upload.delete_instance()
        _forget(upload.id)
        gone += 1
    folder = settings.tmp_path / "uploads"
    if folder.is_dir():
        live = {u.id for u in Upload.select(Upload.id)}
        for part in folder.glob("*.part"):
            if part.stem not in live and now.timestamp() - part.stat().st_mtime > 3600:
                part.unlink(missing_ok=True)
                gone += 1
    # Leftovers of raw uploads and renditions cut off by a crash.
    for stray in [*settings.tmp_path.glob("recv-*"), *settings.tmp_path.glob("render-*")]:
        if now.timestamp() - stray.stat().st_mtime > 3600:
            if stray.is_dir():
                shutil.rmtree(stray, ignore_errors=True)
            else:
                stray.unlink(missing_ok=True)
    return gone
