"""The family library: ingest, timeline, albums, sharing and trash.

The web API and the CLI both call these functions; they hold the rules.
Every function takes the acting user and checks what that user may do.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterable

import peewee as pw

from . import live_photos, renditions, storage
from .db import database
from .errors import PicupError
from .hashing import HashingBeside
from .media.photo import read_header
from .media.sniff import sniff_file
from .models import Album, AlbumMedia, AlbumMember, Media, Meta, User, utcnow

log = logging.getLogger(__name__)

CHUNK = storage.CHUNK
MAX_PAGE = 500
MAX_ID = 2**63 - 1  # SQLite's largest integer: no row has a larger id, and peewee cannot even ask


# ------------------------------------------------------------------ the store
def claim_store(store: storage.BlobStore) -> str:
    """Check the store's marker against the database; write it on first start.

    A database that already knows its store but finds no marker is looking
    at an empty or unmounted folder: that is an outage, never an empty library.
    """
    known = Meta.get_or_none(Meta.key == "store_id")
    marker = store.read_marker()
    if known is None:
        store_id = marker or secrets.token_hex(16)
        if marker is None:
            store.write_marker(store_id)
        Meta.insert(key="store_id", value=store_id).on_conflict_replace().execute()
        return store_id
    if marker is None:
        raise storage.StoreUnavailable(
            f"the photo store {store!r} has no {storage.MARKER_NAME} marker: is the disk or share mounted?"
        )
    if marker != known.value:
        raise storage.StoreUnavailable(
            f"the photo store {store!r} belongs to another Picup (marker {marker}, expected {known.value})"
        )
    return known.value


def check_store(store: storage.BlobStore) -> None:
    """Raise unless the store is reachable and carries this library's marker."""
    store.ping()
    known = Meta.get_or_none(Meta.key == "store_id")
    marker = store.read_marker()
    if marker is None:
        raise storage.StoreUnavailable(
            f"the photo store {store!r} has no {storage.MARKER_NAME} marker: is the disk or share mounted?"
        )
    if known is None or marker != known.value:
        raise storage.StoreUnavailable(f"the marker in the photo store {store!r} is not this library's")


def delete_blob_if_unused(store: storage.BlobStore, sha256: str) -> bool:
    """Remove an original no row refers to. Call inside the write transaction
    that removed the last row, so no upload of the same bytes can slip between."""
    if Media.select().where(Media.sha256 == sha256).exists():
        return False
    check_store(store)  # never delete from a store we cannot vouch for
    store.delete(storage.blob_key(sha256))
    renditions.delete_derived(store, sha256)
    return True


# --------------------------------------------------------------------- ingest
@dataclass
class Received:
    """An upload written to a private temporary file, hashed on the way."""

    path: Path
    size: int
    sha256: str

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)


def temp_file(tmp_dir: Path, prefix: str = "recv") -> tuple[int, Path]:
    tmp_dir.mkdir(parents=True, exist_ok=True)
    path = tmp_dir / f"{prefix}-{secrets.token_hex(12)}"
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), path


# Uploads leave the last of the disk free: the database usually shares it and must keep room
# to record a deletion (that is how a family makes room again) and to grow its log.
RESERVE_MAX = 64 * 1024**2


def check_room(folder: Path, incoming: int) -> None:
    """Refuse ``incoming`` more bytes in ``folder`` where they would eat into the reserve:
    5% of its disk, at most 64 MiB."""
    stats = os.statvfs(folder)
    reserve = min(RESERVE_MAX, stats.f_blocks * stats.f_frsize // 20)
    if stats.f_bavail * stats.f_frsize - incoming < reserve:
        raise storage.StorageFull(f"{folder}: less than {human_size(reserve)} would be left")


def receive(stream: BinaryIO, tmp_dir: Path, *, limit: int, name: str, expected: int | None = None) -> Received:
    """Stream ``stream`` to a temporary file while hashing it.

    Nothing is left behind when the body is too large, incomplete, or the
    disk fills up.
    """
    digest = hashlib.sha256()
    size = 0
    fd, path = temp_file(tmp_dir)
    try:
        with os.fdopen(fd, "wb") as out, HashingBeside(digest) as hashing:
            while chunk := stream.read(CHUNK):
                size += len(chunk)
                if size > limit:
                    raise PicupError("too_large", name=name, limit=human_size(limit))
                check_room(tmp_dir, len(chunk))
                hashing.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        if expected is not None and size != expected:
            raise PicupError("incomplete_body")
        return Received(path=path, size=size, sha256=digest.hexdigest())
    except (OSError, storage.StorageFull) as exc:
        path.unlink(missing_ok=True)
        raise storage_error(exc) from exc
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def storage_error(exc: Exception) -> PicupError:
    """The person-facing error for a storage failure."""
    if isinstance(exc, storage.StorageFull) or getattr(exc, "errno", None) in (28, 122):
        return PicupError("storage_full")
    if isinstance(exc, storage.StoreUnavailable):
        return PicupError("storage_unavailable")
    return PicupError("internal")


@dataclass
class IngestResult:
    media: Media
    duplicate: bool
    restored: bool = False


def _taken_at(info_time, last_modified: dt.datetime | None) -> tuple[dt.datetime, str]:
    if info_time is not None:
        return info_time, "exif"
    if last_modified is not None:
        return last_modified, "file"
    return utcnow(), "upload"


def ingest(
    store: storage.BlobStore,
    received: Received,
    *,
    owner: User,
    filename: str,
    album: Album | None = None,
    last_modified: dt.datetime | None = None,
    live_id: str | None = None,
) -> IngestResult:
    """Keep a received file in the library. The temporary file is always consumed.

    ``live_id`` ties a photo and a short video that came apart on the way (see
    takeout.py) where the files no longer carry the phone's own identifier.
    """
    try:
        name = clean_filename(filename)
        if album is not None:
            require_album_role(owner, album, "add")
        if received.size == 0:
            raise PicupError("empty_file")
        # An unmounted share is an empty folder: an original written there would vanish
        # from sight when the share comes back, so nothing is kept without the marker.
        try:
            check_store(store)
        except storage.StorageError as exc:
            raise storage_error(exc) from exc
        filetype = sniff_file(received.path)
        if filetype is None:
            raise PicupError("unsupported_type", name=name)
        existing = Media.get_or_none((Media.owner == owner) & (Media.sha256 == received.sha256))
        if existing is not None and existing.status == "ready":
            received.discard()
            return _already_there(existing, album, owner)
        if existing is not None:
            media = existing  # a pending row left by an interrupted ingest: finish it
        else:
            info = read_header(str(received.path)) if filetype.kind == "photo" else None
            taken, source = _taken_at(info.taken_at if info else None, last_modified)
            try:
                with database.atomic():
                    media = Media.create(
                        owner=owner,
                        sha256=received.sha256,
                        size=received.size,
                        media_type=filetype.media_type,
                        kind=filetype.kind,
                        original_filename=name,
                        taken_at=taken,
                        taken_at_source=source,
                        taken_at_offset=info.taken_at_offset if info and source == "exif" else None,
                        width=info.width if info else None,
                        height=info.height if info else None,
                        live_id=live_id,
                        status="pending",
                    )
            except pw.IntegrityError:  # the same bytes arrived twice at once
                received.discard()
                return _already_there(Media.get(owner=owner, sha256=received.sha256), album, owner)
    except BaseException:
        received.discard()
        raise
    # The row (status "pending") now protects the blob from purge; store the bytes.
    try:
        store.put_file(str(received.path), sha256=received.sha256)
    except (storage.StorageError, OSError) as exc:
        received.discard()
        with database.atomic():
            Media.delete().where((Media.id == media.id) & (Media.status == "pending")).execute()
        log.warning("could not store an original", extra={"error": str(exc), "sha256": received.sha256})
        raise storage_error(exc) from exc
    with database.atomic():
        Media.update(status="ready").where(Media.id == media.id).execute()
        renditions.enqueue(media.id)
        if album is not None:
            _add_to_album(album, [media], owner)
    log.info("media added", extra={"media_id": media.id, "user_id": owner.id, "size": received.size})
    return IngestResult(media=Media.get_by_id(media.id), duplicate=False)


def already_have(owner: User, sha256: str, album: Album | None = None,
                 live_id: str | None = None) -> IngestResult | None:
    """If ``owner`` already keeps these bytes, say so (restoring them from the trash).

    A ``live_id`` (see :func:`ingest`) is taken by an item not yet tied to the other half
    of its Live Photo, so that half, added now or later, is tied to it. It replaces the
    phone's own identifier: a still sent from an iPhone carries one, the video Takeout
    writes beside it has lost it."""
    existing = Media.get_or_none((Media.owner == owner) & (Media.sha256 == sha256) & (Media.status == "ready"))
    if existing is None:
        return None
    result = _already_there(existing, album, owner)
    if live_id and existing.live_id != live_id:
        with database.atomic():
            current = Media.get_by_id(existing.id)
            if current.live_photo_id is None and not current.motions.exists():
                Media.update(live_id=live_id).where(Media.id == current.id).execute()
                if current.render_status == "ready":  # else its render does it
                    live_photos.pair(current.id)  # after the restore above: pair() leaves the trash alone
    return result


def _already_there(existing: Media, album: Album | None, owner: User) -> IngestResult:
    restored = existing.trashed_at is not None
    with database.atomic():
        if restored:
            _untrash(existing)
        if album is not None:
            still = [existing.live_photo] if existing.live_photo_id else []  # shows for its video
            _add_to_album(album, [existing, *still], owner)
    return IngestResult(media=Media.get_by_id(existing.id), duplicate=True, restored=restored)


def clean_filename(name: str | None) -> str:
    """A display name for the original: no folders, no control characters."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch for ch in base if ch.isprintable()).strip()
    return base[:255] or "untitled"


def human_size(size: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return str(size)


# ----------------------------------------------------------------- visibility
def readable_albums(user: User):
    member = AlbumMember.select(AlbumMember.album).where(AlbumMember.user == user)
    return Album.select(Album.id).where((Album.owner == user) | (Album.id.in_(member)))


def get_media(user: User, media_id: int, *, include_trashed: bool = False) -> Media:
    """A media item ``user`` may see: their own, or in an album shared with them."""
    media = Media.get_or_none((Media.id == media_id) & (Media.status == "ready")) if media_id <= MAX_ID else None
    if media is None:
        raise PicupError("not_found")
    if media.owner_id == user.id:
        if media.trashed_at is not None and not include_trashed:
            raise PicupError("not_found")
        return media
    if media.trashed_at is None:
        shared = AlbumMedia.select().where(  # a Live Photo's video goes where its still goes
            AlbumMedia.media.in_([media.id, media.live_photo_id or media.id])
            & (AlbumMedia.album.in_(readable_albums(user)))
        )
        if shared.exists():
            return media
    raise PicupError("not_found")  # never confirm that someone else's item exists


def has_embedded_motion(media: Media) -> bool:
    """An Android motion photo whose video was read and made playable (see renditions.py)."""
    return media.kind == "photo" and media.motion_duration is not None and media.web_video


def media_json(media: Media, favorites: set[int] | None = None, motions: dict[int, Media] | None = None) -> dict:
    """The API's view of an item; ``favorites`` (the person's hearts) adds ``favorite``.

    ``motions`` (from :func:`live_photos.motions_for`, for a whole page) saves a
    query per still; without it the item's Live Photo video is looked up here.
    """
    if motions is None:
        motions = live_photos.motions_for([media.id]) if media.kind == "photo" else {}
    motion = motions.get(media.id)
    live, live_url = None, None
    if motion:  # an iPhone's: a video of its own
        live, live_url = {"video_id": motion.id, "duration": motion.duration}, f"/api/v1/media/{motion.id}/video"
    elif has_embedded_motion(media):  # an Android motion photo's, inside the photo
        live, live_url = {"video_id": None, "duration": media.motion_duration}, f"/api/v1/media/{media.id}/video"
    location = None
    if media.latitude is not None and media.longitude is not None:
        location = {"latitude": media.latitude, "longitude": media.longitude}
    return {
        "id": media.id,
        "owner_id": media.owner_id,
        "kind": media.kind,
        "media_type": media.media_type,
        "filename": media.original_filename,
        "size": media.size,
        "sha256": media.sha256,
        "taken_at": iso(media.taken_at),
        "taken_at_offset": media.taken_at_offset,
        "taken_at_source": media.taken_at_source,
        "width": media.width,
        "height": media.height,
        "duration": media.duration,
        "camera": {"make": media.camera_make, "model": media.camera_model} if media.camera_model else None,
        "location": location,
        "placeholder": media.placeholder,
        "render": {"status": media.render_status, "error": media.render_error, "damaged": media.damaged},
        "created_at": iso(media.created_at),
        "trashed_at": iso(media.trashed_at),
        **({"favorite": media.id in favorites} if favorites is not None else {}),
        "live": live,
        "live_photo_id": media.live_photo_id,
        "urls": {
            "original": f"/api/v1/media/{media.id}/original",
            "thumb": f"/api/v1/media/{media.id}/thumb",
            "preview": f"/api/v1/media/{media.id}/preview",
            **({"video": f"/api/v1/media/{media.id}/video"} if media.kind == "video" else {}),
            **({"live": live_url} if live_url else {}),
        },
    }


def iso(moment: dt.datetime | None) -> str | None:
    return None if moment is None else moment.replace(tzinfo=dt.UTC).isoformat().replace("+00:00", "Z")


# ------------------------------------------------------------------- timeline
def _encode_cursor(media: Media) -> str:
    raw = json.dumps([media.taken_at.isoformat(), media.id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[dt.datetime, int]:
    """What :func:`_encode_cursor` made; anything else (a cursor is in the URL, so anyone can
    make one up: nested deep, ``1e400``, an id past 64 bits) is ``bad_cursor``."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        taken, media_id = json.loads(raw)
        taken, media_id = dt.datetime.fromisoformat(taken), int(media_id)
    except (ValueError, TypeError, OverflowError, RecursionError):
        raise PicupError("bad_cursor") from None
    if taken.tzinfo is not None or not -MAX_ID - 1 <= media_id <= MAX_ID:
        raise PicupError("bad_cursor")
    return taken, media_id


def timeline(user: User, *, limit: int = 100, cursor: str | None = None, album: Album | None = None):
    """One page of media, newest taken first, and the cursor of the next page.

    Keyset pagination on (taken_at, id): page 900 costs what page 1 costs.
    """
    limit = max(1, min(int(limit), MAX_PAGE))
    if album is not None:
        require_album_role(user, album, "view")
        query = (
            Media.select()
            .join(AlbumMedia, on=(AlbumMedia.media == Media.id))
            .where((AlbumMedia.album == album) & Media.trashed_at.is_null() & (Media.status == "ready"))
        )
    else:
        query = Media.select().where(
            (Media.owner == user) & Media.trashed_at.is_null() & (Media.status == "ready")
        )
    query = query.where(~live_photos.is_motion())
    if cursor:
        taken, media_id = _decode_cursor(cursor)
        query = query.where(pw.Tuple(Media.taken_at, Media.id) < pw.Tuple(taken, media_id))
    rows = list(query.order_by(Media.taken_at.desc(), Media.id.desc()).limit(limit + 1))
    next_cursor = _encode_cursor(rows[limit - 1]) if len(rows) > limit else None
    return rows[:limit], next_cursor


# --------------------------------------------------------------------- albums
ROLES = ("view", "add")


def album_role(user: User, album: Album) -> str | None:
    """"owner", "add", "view" or None."""
    if album.owner_id == user.id:
        return "owner"
    member = AlbumMember.get_or_none((AlbumMember.album == album) & (AlbumMember.user == user))
    return member.role if member else None


def require_album_role(user: User, album: Album, needed: str) -> str:
    role = album_role(user, album)
    if role is None:
        raise PicupError("not_found")
    rank = {"view": 0, "add": 1, "owner": 2}
    if rank[role] < rank[needed]:
        raise PicupError("forbidden")
    return role


def get_album(user: User, album_id: int, needed: str = "view") -> Album:
    album = Album.get_or_none(Album.id == album_id) if album_id <= MAX_ID else None
    if album is None:
        raise PicupError("not_found")
    require_album_role(user, album, needed)
    return album


def _title(title) -> str:
    title = (title or "").strip() if isinstance(title, str) else ""
    if not title:
        raise PicupError("missing_field", field="title")
    if len(title) > 200:
        raise PicupError("invalid_value", field="title")
    return title


def create_album(user: User, title: str) -> Album:
    return Album.create(owner=user, title=_title(title))


def update_album(user: User, album: Album, *, title=None, cover_id=None, clear_cover=False) -> Album:
    require_album_role(user, album, "owner")
    changes = {Album.updated_at: utcnow()}
    if title is not None:
        changes[Album.title] = _title(title)
    if clear_cover:
        changes[Album.cover] = None
    elif cover_id is not None:
        in_album = AlbumMedia.select().where((AlbumMedia.album == album) & (AlbumMedia.media == cover_id))
        if not in_album.exists():
            raise PicupError("invalid_value", field="cover_id")
        changes[Album.cover] = cover_id
    Album.update(changes).where(Album.id == album.id).execute()
    return Album.get_by_id(album.id)


def delete_album(user: User, album: Album) -> None:
    """Delete the album; its photos stay in the library."""
    require_album_role(user, album, "owner")
    album.delete_instance()


def _add_to_album(album: Album, media: Iterable[Media], by: User) -> int:
    rows = [{"album": album.id, "media": m.id, "added_by": by.id, "added_at": utcnow()} for m in media]
    if not rows:
        return 0
    added = AlbumMedia.insert_many(rows).on_conflict_ignore().execute()
    updates = {Album.updated_at: utcnow()}
    if album.cover_id is None:
        updates[Album.cover] = rows[0]["media"]
    Album.update(updates).where(Album.id == album.id).execute()
    return added


def add_to_album(user: User, album: Album, media_ids: list[int]) -> int:
    """Add the user's own items to an album they own or may add to."""
    require_album_role(user, album, "add")
    ids = _ids(media_ids)
    media = list(
        Media.select().where(
            Media.id.in_(ids) & (Media.owner == user) & Media.trashed_at.is_null() & (Media.status == "ready")
        )
    )
    if len(media) != len(set(ids)):
        raise PicupError("not_found")
    with database.atomic():
        _add_to_album(album, media, user)
    return len(media)


def remove_from_album(user: User, album: Album, media_ids: list[int]) -> int:
    """Take items out of an album; the photos themselves are untouched."""
    role = require_album_role(user, album, "add")
    ids = _ids(media_ids)
    # A Live Photo's video goes with its still, so a shared album does not keep showing it.
    motions = Media.select(Media.id).where(Media.live_photo.in_(ids))
    query = AlbumMedia.delete().where(
        (AlbumMedia.album == album) & (AlbumMedia.media.in_(ids) | AlbumMedia.media.in_(motions))
    )
    if role != "owner":  # a contributor may take back only what they added
        query = query.where(AlbumMedia.added_by == user)
    with database.atomic():
        removed = query.execute()
        if album.cover_id in ids:
            first = (AlbumMedia.select().join(Media)
                     .where((AlbumMedia.album == album) & ~live_photos.is_motion()).first())
            Album.update(cover=first.media_id if first else None).where(Album.id == album.id).execute()
    return removed


def set_members(user: User, album: Album, members: list[dict]) -> list[AlbumMember]:
    """Replace who the album is shared with: ``[{"user_id", "role"}]``."""
    require_album_role(user, album, "owner")
    wanted: dict[int, str] = {}
    for entry in members:
        if not isinstance(entry, dict):
            raise PicupError("invalid_value", field="members")
        role = entry.get("role", "view")
        if role not in ROLES:
            raise PicupError("invalid_value", field="role")
        member_id = entry.get("user_id")
        if not isinstance(member_id, int) or member_id == album.owner_id:
            raise PicupError("invalid_value", field="user_id")
        wanted[member_id] = role
    if wanted and User.select().where(User.id.in_(list(wanted))).count() != len(wanted):
        raise PicupError("invalid_value", field="user_id")
    with database.atomic():
        AlbumMember.delete().where(AlbumMember.album == album).execute()
        for member_id, role in wanted.items():
            AlbumMember.create(album=album, user=member_id, role=role)
    return list(AlbumMember.select().where(AlbumMember.album == album))


def albums_for(user: User) -> list[tuple[Album, str]]:
    """Albums the user owns or that are shared with them, newest activity first."""
    shared = {m.album_id: m.role for m in AlbumMember.select().where(AlbumMember.user == user)}
    albums = (  # the owner and the cover come along, so album_json need not fetch them one by one
        Album.select(Album, User.id, User.display_name, Media)
        .join(User, on=(Album.owner == User.id))
        .switch(Album)
        .join(Media, pw.JOIN.LEFT_OUTER, on=(Album.cover == Media.id))
        .where((Album.owner == user) | Album.id.in_(list(shared) or [0]))
    )
    return [(a, "owner" if a.owner_id == user.id else shared[a.id]) for a in albums.order_by(Album.updated_at.desc())]


def album_json(album: Album, role: str) -> dict:
    count = (
        AlbumMedia.select()
        .join(Media)
        .where((AlbumMedia.album == album) & Media.trashed_at.is_null() & (Media.status == "ready")
               & ~live_photos.is_motion())
        .count()
    )
    members = [
        {"user_id": m.user_id, "role": m.role}
        for m in AlbumMember.select().where(AlbumMember.album == album).order_by(AlbumMember.user)
    ]
    cover = None
    if album.cover_id is not None:
        media = album.cover  # albums_for joins it; fetched here otherwise
        if media.status == "ready" and media.trashed_at is None and media.render_status == "ready":
            cover = {"thumb": f"/api/v1/media/{media.id}/thumb", "placeholder": media.placeholder}
    return {
        "id": album.id,
        "title": album.title,
        "owner_id": album.owner_id,
        "owner_name": album.owner.display_name,
        "role": role,
        "cover_id": album.cover_id,
        "cover": cover,
        "media_count": count,
        "members": members if role == "owner" else None,
        "created_at": iso(album.created_at),
        "updated_at": iso(album.updated_at),
    }


def _ids(values) -> list[int]:
    if not isinstance(values, list) or not values or not all(isinstance(v, int) for v in values):
        raise PicupError("invalid_value", field="media_ids")
    return values


# ---------------------------------------------------------------------- trash
def trash(user: User, media_id: int) -> Media:
    """Move an item to the trash; a Live Photo goes as one (asked for by its still or its video)."""
    media = get_media(user, media_id)
    if media.owner_id != user.id:
        raise PicupError("forbidden")
    Media.update(trashed_at=utcnow()).where(
        live_photos.with_motions([media.live_photo_id or media.id]) & Media.trashed_at.is_null()
    ).execute()
    return Media.get_by_id(media.id)


def restore(user: User, media_id: int) -> Media:
    media = get_media(user, media_id, include_trashed=True)
    if media.owner_id != user.id:
        raise PicupError("forbidden")
    _untrash(media)
    return Media.get_by_id(media.id)


def _untrash(media: Media) -> None:
    """Out of the trash, with the other half of its Live Photo (either half brings both back)."""
    Media.update(trashed_at=None).where(
        live_photos.with_motions([media.live_photo_id or media.id]) & Media.trashed_at.is_null(False)
    ).execute()


def trashed(user: User) -> list[Media]:
    """The trash, newest first; a Live Photo shows as its still."""
    return list(
        Media.select()
        .where((Media.owner == user) & Media.trashed_at.is_null(False) & ~live_photos.still_trashed_too())
        .order_by(Media.trashed_at.desc(), Media.id.desc())
    )


def purge_at(media: Media, trash_days: int) -> str | None:
    return iso(media.trashed_at + dt.timedelta(days=trash_days)) if media.trashed_at else None


def delete_forever(store: storage.BlobStore, user: User, media_id: int) -> None:
    """Empty one item from the trash now (only items already in the trash); a Live Photo
    goes as one, its video first, so an interruption never leaves a clip of its own."""
    in_trash = (Media.owner == user) & Media.trashed_at.is_null(False)
    media = Media.get_or_none((Media.id == media_id) & in_trash)
    if media is None:
        raise PicupError("not_found")
    rows = Media.select().where(live_photos.with_motions([media.live_photo_id or media.id]) & in_trash)
    _delete_rows(store, sorted(rows, key=lambda row: row.live_photo_id is None))


def _delete_rows(store: storage.BlobStore, rows: list[Media]) -> int:
    check_store(store)
    deleted = 0
    for media in rows:
        with database.atomic():
            Media.delete().where(Media.id == media.id).execute()
            delete_blob_if_unused(store, media.sha256)
            deleted += 1
        log.info("media deleted for good", extra={"media_id": media.id, "user_id": media.owner_id})
    return deleted


def purge_trash(store: storage.BlobStore, trash_days: int) -> int:
    """Delete what has been in the trash longer than ``trash_days``."""
    cutoff = utcnow() - dt.timedelta(days=trash_days)
    expired = list(Media.select().where(Media.trashed_at.is_null(False) & (Media.trashed_at < cutoff)))
    return _delete_rows(store, expired) if expired else 0


def clear_stale_pending(store: storage.BlobStore, older_than: dt.timedelta = dt.timedelta(hours=6)) -> int:
    """Remove rows left "pending" by an ingest that was killed half-way."""
    cutoff = utcnow() - older_than
    stale = list(Media.select().where((Media.status == "pending") & (Media.created_at < cutoff)))
    return _delete_rows(store, stale) if stale else 0
