"""Albums: create, rename, cover, add and remove items, share with family."""

from __future__ import annotations

from flask import Blueprint, g, jsonify

from .. import library
from ..errors import PicupError
from .auth import json_body, login_required

bp = Blueprint("api_albums", __name__, url_prefix="/api/v1/albums")


def _json(album, role=None):
    return library.album_json(album, role or library.album_role(g.user, album))


@bp.get("")
@login_required
def list_albums():
    """The user's albums and those shared with them."""
    return jsonify({"albums": [library.album_json(a, role) for a, role in library.albums_for(g.user)]})


@bp.post("")
@login_required
def create_album():
    """Create an album: ``{"title": ...}``."""
    album = library.create_album(g.user, json_body().get("title"))
    return jsonify({"album": _json(album, "owner")}), 201


@bp.get("/<int:album_id>")
@login_required
def get_album(album_id: int):
    """One album's details (its items: ``GET /api/v1/media?album=ID``)."""
    return jsonify({"album": _json(library.get_album(g.user, album_id))})


@bp.patch("/<int:album_id>")
@login_required
def update_album(album_id: int):
    """Rename or set the cover: ``{"title"}``, ``{"cover_id"}`` (null clears it)."""
    data = json_body()
    album = library.get_album(g.user, album_id)
    cover = data.get("cover_id")
    if cover is not None and not isinstance(cover, int):
        raise PicupError("invalid_value", field="cover_id")
    album = library.update_album(
        g.user, album, title=data.get("title"), cover_id=cover, clear_cover="cover_id" in data and cover is None
    )
    return jsonify({"album": _json(album)})


@bp.delete("/<int:album_id>")
@login_required
def delete_album(album_id: int):
    """Delete the album; the photos in it are not deleted."""
    library.delete_album(g.user, library.get_album(g.user, album_id))
    return "", 204


@bp.post("/<int:album_id>/media")
@login_required
def add_media(album_id: int):
    """Add your items: ``{"media_ids": [...]}``."""
    album = library.get_album(g.user, album_id)
    added = library.add_to_album(g.user, album, json_body().get("media_ids"))
    return jsonify({"album": _json(library.get_album(g.user, album_id)), "added": added})


@bp.delete("/<int:album_id>/media")
@login_required
def remove_media(album_id: int):
    """Take items out of the album (they stay in the library)."""
    album = library.get_album(g.user, album_id)
    removed = library.remove_from_album(g.user, album, json_body().get("media_ids"))
    return jsonify({"album": _json(library.get_album(g.user, album_id)), "removed": removed})


@bp.put("/<int:album_id>/members")
@login_required
def set_members(album_id: int):
    """Share with family: ``{"members": [{"user_id": 2, "role": "view" | "add"}]}``."""
    album = library.get_album(g.user, album_id)
    members = json_body().get("members")
    if not isinstance(members, list):
        raise PicupError("invalid_value", field="members")
    library.set_members(g.user, album, members)
    return jsonify({"album": _json(album)})
