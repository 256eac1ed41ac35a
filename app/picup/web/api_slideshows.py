"""Slideshow links for TVs (``/api/v1/slideshows``)."""

from __future__ import annotations

from flask import Blueprint, g, jsonify, request

from .. import i18n, slideshows
from ..errors import PicupError
from .auth import json_body, login_required, state
from .qrcode import qr_response

bp = Blueprint("api_slideshows", __name__, url_prefix="/api/v1")


def _json(show, token=None):
    secret = state().settings.secret_key
    token = token or slideshows.token_for(show.nonce, secret)
    translate = lambda key: i18n.translate(key, g.lang)  # noqa: E731
    return slideshows.to_json(show, token, request.host_url.rstrip("/"), translate)


def _body() -> dict:
    """The JSON body, with ``settings`` (when sent) an object."""
    data = json_body()
    if data.get("settings") is not None and not isinstance(data["settings"], dict):
        raise PicupError("invalid_value", field="settings")
    return data


def _saved(change, *args):
    """``slideshows.create`` or ``update``; an ``ends_at`` out of datetime's range once in UTC
    (year 1 east of Greenwich, year 9999 west of it) is a wrong value, not a crash."""
    try:
        return change(*args)
    except OverflowError:
        raise PicupError("invalid_value", field="ends_at") from None


@bp.get("/slideshows")
@login_required
def list_slideshows():
    """Your slideshow links, newest first."""
    return jsonify({"slideshows": [_json(show) for show in slideshows.list_for(g.user)]})


@bp.post("/slideshows")
@login_required
def create_slideshow():
    """``{"album_id"}`` or ``{"source": "all"|"favorites"|"recent"|"on_this_day"}`` plus settings."""
    show, token = _saved(slideshows.create, g.user, _body(), state().settings.secret_key)
    return jsonify({"slideshow": _json(show, token)}), 201


@bp.get("/slideshows/<int:show_id>")
@login_required
def get_slideshow(show_id: int):
    return jsonify({"slideshow": _json(slideshows.owned(g.user, show_id))})


@bp.patch("/slideshows/<int:show_id>")
@login_required
def update_slideshow(show_id: int):
    """Settings, ``paused``, ``ends_at`` (ISO time or null), ``new_code: true``."""
    show = _saved(slideshows.update, slideshows.owned(g.user, show_id), _body())
    return jsonify({"slideshow": _json(show)})


@bp.delete("/slideshows/<int:show_id>")
@login_required
def revoke_slideshow(show_id: int):
    """Turn the link off for good."""
    slideshows.revoke(slideshows.owned(g.user, show_id))
    return "", 204


@bp.get("/slideshows/<int:show_id>/qr")
@login_required
def slideshow_qr(show_id: int):
    """The link as a QR code (SVG), for a tablet's camera."""
    show = slideshows.owned(g.user, show_id)
    return qr_response(_json(show)["url"])
