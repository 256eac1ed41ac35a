"""The TV pages: ``/tv/<token>`` (a slideshow, no sign-in), its feed and pictures, and ``/tv``
where a short code typed on a remote opens a slideshow.

A token opens its own slideshow's display-size pictures (and videos, if the slideshow
plays them) and nothing else: no other media, no originals, no API. A revoked or
expired link answers "this slideshow was turned off" at the next request.
"""

from __future__ import annotations

import random

from flask import Blueprint, g, jsonify, redirect, request

from .. import i18n, library, slideshows
from ..errors import PicupError
from .api_media import send_original, send_rendition
from .auth import public, state
from .pages import render

bp = Blueprint("tv", __name__, url_prefix="/tv")


def _live(token: str):
    show = slideshows.find(token)
    if show is None or not slideshows.is_live(show):
        return None
    return show


def _item_json(token: str, media, settings: dict) -> dict:
    base = f"/tv/{token}/media/{media.id}"
    return {
        "id": media.id,
        "kind": media.kind,
        "src": f"{base}/display",
        "video": f"{base}/video" if media.kind == "video" else None,
        "original": f"{base}/original" if settings["download"] else None,
        "taken_at": library.iso(media.taken_at),
        "taken_at_offset": media.taken_at_offset,
        "duration": media.duration,
        "width": media.width,
        "height": media.height,
    }


def _playable(show, settings):
    media = slideshows.items(show, settings["order"])
    if settings["videos"] == "off":
        media = [m for m in media if m.kind != "video"]
    return media


def _state(show, media) -> str:
    if show.paused:
        return "paused"
    return "playing" if media else "empty"


def _title(show) -> str:
    return slideshows.title(show, lambda key: i18n.translate(key, g.lang))


def _turned_off():
    return render("tv_off.html", status=410, user=None)


@bp.get("/<token>")
@public
def show_page(token: str):
    """The slideshow page; ``?plain=1&n=K`` is the no-script page at slide K (meta refresh)."""
    show = _live(token)
    if show is None:
        return _turned_off()
    slideshows.seen(show)
    settings = slideshows.settings_of(show)
    media = _playable(show, settings)
    plain = request.args.get("plain") == "1"
    try:
        n = max(0, int(request.args.get("n", "0")))
    except ValueError:
        n = 0
    item = None
    if media and not show.paused:
        item = random.choice(media) if settings["order"] == "shuffle" and plain else media[n % len(media)]
    date_words = None
    if item is not None:
        date_words = _date_words(item, g.lang)
    base = f"/tv/{token}"
    response = render(
        "tv.html",
        user=None,
        token=token,
        title=_title(show),
        settings=settings,
        state=_state(show, media),
        item=_item_json(token, item, settings) if item else None,
        plain=plain,
        next_url=f"{base}?plain=1&n={n + 1}",
        plain_url=f"{base}?plain=1&n={n}",
        feed_url=f"{base}/feed",
        date_words=date_words,
    )
    return response


def _date_words(media, lang: str) -> str:
    import datetime as dt

    moment = media.taken_at
    if media.taken_at_offset is not None:
        moment = moment + dt.timedelta(minutes=media.taken_at_offset)
    if lang == "ko":
        return f"{moment.year}년 {moment.month}월 {moment.day}일"
    return f"{moment.strftime('%B')} {moment.day}, {moment.year}"


@bp.get("/<token>/feed")
@public
def feed(token: str):
    """What the TV shows next: settings, state and up to 500 items."""
    show = _live(token)
    if show is None:
        raise PicupError("not_found")
    slideshows.seen(show)
    settings = slideshows.settings_of(show)
    media = _playable(show, settings)
    response = jsonify({
        "state": _state(show, media),
        "title": _title(show),
        "settings": settings,
        "version": slideshows.version(show),
        "items": [] if show.paused else [_item_json(token, m, settings) for m in media],
    })
    response.headers["Cache-Control"] = "no-store"  # old Safari caches XHR answers otherwise
    return response


@bp.route("/<token>/media/<int:media_id>/<any(display, video, original):rendition>", methods=["GET", "HEAD"])
@public
def picture(token: str, media_id: int, rendition: str):
    """A display-size JPEG (or the video) of a photo this slideshow shows; the original only
    when the owner lets people with the link download; nothing else."""
    show = _live(token)
    if show is None:
        raise PicupError("not_found")
    media = slideshows.shows(show, media_id)
    settings = slideshows.settings_of(show)
    if media is None or (rendition == "video" and (settings["videos"] == "off" or media.kind != "video")):
        # a motion photo's few seconds (with sound) are not part of a slideshow, as Live Photos' are not
        raise PicupError("not_found")
    if rendition == "original":
        if not settings["download"]:
            raise PicupError("not_found")
        return send_original(media)
    return send_rendition(media, "preview" if rendition == "display" else "video")


@bp.get("")
@public
def pair_page():
    """Type the short code shown in Picup on the TV's remote."""
    return render("tv_pair.html", user=None, message=None)


@bp.post("")
@public
def pair():
    client = request.remote_addr or "?"
    if not state().tv_pairing.allow(client):
        return render("tv_pair.html", status=429, user=None, message="tv_pair_slow")
    show = slideshows.pair(request.form.get("code", ""))
    if show is None:
        return render("tv_pair.html", status=400, user=None, message="tv_pair_wrong")
    token = slideshows.token_for(show.nonce, state().settings.secret_key)
    return redirect(f"/tv/{token}", code=303)
