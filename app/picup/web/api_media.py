"""Adding, listing, reading, trashing and marking (a heart) photos and videos."""

from __future__ import annotations

from flask import Blueprint, g, jsonify, request

from .. import favorites, library, live_photos, renditions, storage
from ..errors import PicupError
from ..uploads import last_modified_from
from .auth import login_required, state
from .serving import REBUILDABLE, send_blob

bp = Blueprint("api_media", __name__, url_prefix="/api/v1")


def _album_arg(needed: str):
    value = request.args.get("album")
    if not value:
        return None
    if not (value.isascii() and value.isdigit()):  # "²".isdigit() is True, int("²") is not
        raise PicupError("invalid_value", field="album")
    return library.get_album(g.user, int(value), needed)


@bp.post("/media")
@login_required
def upload_raw():
    """Add one small file sent as the raw request body (large files: use tus)."""
    settings = state().settings
    name = library.clean_filename(request.args.get("filename"))
    album = _album_arg("add")
    declared = request.content_length
    if declared is not None and declared > settings.raw_upload_limit:
        raise PicupError("too_large", name=name, limit=library.human_size(settings.raw_upload_limit))
    received = library.receive(
        request.stream, settings.tmp_path, limit=settings.raw_upload_limit, name=name, expected=declared
    )
    result = library.ingest(
        state().store,
        received,
        owner=g.user,
        filename=name,
        album=album,
        last_modified=last_modified_from(request.args.get("last_modified")),
    )
    body = {"media": library.media_json(result.media), "duplicate": result.duplicate}
    if result.restored:
        body["restored_from_trash"] = True
    return jsonify(body), 200 if result.duplicate else 201


@bp.get("/media")
@login_required
def list_media():
    """The timeline (or an album's items), newest taken first, one page at a time."""
    limit = request.args.get("limit", "100")
    if not (limit.isascii() and limit.isdigit()):
        raise PicupError("invalid_value", field="limit")
    items, next_cursor = library.timeline(
        g.user, limit=int(limit), cursor=request.args.get("cursor"), album=_album_arg("view")
    )
    ids = [m.id for m in items]
    hearts, motions = favorites.favorite_ids(g.user, ids), live_photos.motions_for(ids)
    return jsonify({"items": [library.media_json(m, hearts, motions) for m in items], "next_cursor": next_cursor})


@bp.get("/media/<int:media_id>")
@login_required
def get_media(media_id: int):
    """One item's details."""
    media = library.get_media(g.user, media_id)
    return jsonify({"media": library.media_json(media, favorites.favorite_ids(g.user, [media.id]))})


@bp.delete("/media/<int:media_id>")
@login_required
def trash_media(media_id: int):
    """Move an item to the trash (it can be restored for the trash period)."""
    media = library.trash(g.user, media_id)
    body = library.media_json(media)
    body["purge_at"] = library.purge_at(media, state().settings.trash_days)
    return jsonify({"media": body})


@bp.post("/media/<int:media_id>/restore")
@login_required
def restore_media(media_id: int):
    """Bring an item back from the trash."""
    return jsonify({"media": library.media_json(library.restore(g.user, media_id))})


@bp.route("/media/<int:media_id>/original", methods=["GET", "HEAD"])
@login_required
def original(media_id: int):
    """The original file, byte for byte, with ranges for seeking."""
    return send_original(library.get_media(g.user, media_id))


def send_original(media):
    """The original of a media item the caller may see (also used by the TV pages)."""
    return send_blob(
        state().store,
        storage.blob_key(media.sha256),
        size=media.size,
        etag=media.sha256,
        mimetype=media.media_type,
        filename=media.original_filename,
    )


RENDITIONS = {
    "thumb": (renditions.THUMB, "image/webp", "thumb"),
    "preview": (renditions.PREVIEW, "image/jpeg", "preview"),
    "video": (renditions.WEB_VIDEO, "video/mp4", "video"),
}


@bp.route("/media/<int:media_id>/<any(thumb, preview, video):rendition>", methods=["GET", "HEAD"])
@login_required
def rendition(media_id: int, rendition: str):
    """The grid thumbnail (WebP), the display size (JPEG) or the video browsers can play."""
    return send_rendition(library.get_media(g.user, media_id), rendition)


def send_rendition(media, rendition: str):
    """One rendition of a media item the caller may see (also used by the TV pages)."""
    if rendition == "video" and media.kind != "video" and not library.has_embedded_motion(media):
        raise PicupError("not_found")
    if media.render_status == "failed":
        raise PicupError("unreadable_file")
    if rendition == "video" and media.render_status == "ready" and not media.web_video:
        return send_original(media)  # it plays in browsers as it is
    if media.render_status != "ready":
        raise PicupError("not_ready")
    name, mimetype, suffix = RENDITIONS[rendition]
    key = renditions.derived(media, name)
    store = state().store
    try:
        size = store.size(key)
    except storage.BlobNotFound:
        raise PicupError("not_ready") from None  # being remade
    stem = media.original_filename.rsplit(".", 1)[0]
    return send_blob(
        store,
        key,
        size=size,
        etag=f"{media.sha256}-{suffix}-{size}",
        mimetype=mimetype,
        filename=f"{stem}-{suffix}.{name.rsplit('.', 1)[1]}",
        cache=REBUILDABLE,
    )


@bp.get("/trash")
@login_required
def list_trash():
    """What is in the user's trash and when each item goes for good."""
    days = state().settings.trash_days
    items = []
    trashed = library.trashed(g.user)
    motions = live_photos.motions_for([m.id for m in trashed], trashed=True)
    for media in trashed:
        body = library.media_json(media, motions=motions)
        body["purge_at"] = library.purge_at(media, days)
        items.append(body)
    return jsonify({"items": items, "trash_days": days})


@bp.delete("/trash/<int:media_id>")
@login_required
def delete_forever(media_id: int):
    """Delete one trashed item for good, now."""
    try:
        library.delete_forever(state().store, g.user, media_id)
    except storage.StorageError as exc:
        raise library.storage_error(exc) from exc
    return "", 204


@bp.put("/media/<int:media_id>/favorite")
@login_required
def favorite(media_id: int):
    """A heart on an item you can see (per person)."""
    favorites.set_favorite(g.user, media_id, True)
    return jsonify({"favorite": True})


@bp.delete("/media/<int:media_id>/favorite")
@login_required
def unfavorite(media_id: int):
    favorites.set_favorite(g.user, media_id, False)
    return jsonify({"favorite": False})
