"""Slideshow links for the living-room TV: what they show, their settings, their tokens.

A slideshow belongs to one person and shows one album, or "all", "favorites",
"recent" (taken or added in the last 30 days) or "on_this_day" (this day in past
years) of that person's photos. Its settings live here on the server, so the TV picks
up changes without anyone touching it.

The token in the link (``/tv/<token>``) is never stored: it is an HMAC of a random
``nonce`` under the server's secret key; the database keeps its SHA-256 to find the
slideshow. A short code (6 letters, typed on a TV remote) pairs a TV within minutes.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import random
import secrets
import time

import peewee as pw

from . import library, live_photos
from .db import database
from .errors import PicupError
from .models import AlbumMedia, Favorite, Media, Slideshow, User, utcnow

SOURCES = ("album", "all", "favorites", "recent", "on_this_day")
ORDERS = ("shuffle", "newest", "oldest")
VIDEOS = ("off", "full", "cut")
FITS = ("contain", "fill")
DEFAULTS = {
    "seconds": 10,
    "order": "shuffle",
    "videos": "cut",
    "video_limit": 30,
    "show_date": True,
    "show_title": True,
    "show_clock": False,
    "fit": "contain",
    "quiet_from": None,
    "quiet_to": None,
    "download": False,  # people with the link may download the originals (with their EXIF)
}
CODE_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"  # no I or O to mistake for 1 or 0
CODE_MINUTES = 15
FEED_LIMIT = 500  # items per feed; a bigger shuffled slideshow draws a fresh 500 every hour
SAMPLE_SECONDS = 3600
RECENT_DAYS = 30


# ------------------------------------------------------------------ tokens


def token_for(nonce: str, secret_key: str) -> str:
    mac = hmac.new(secret_key.encode(), f"picup-slideshow:{nonce}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac[:16]).decode().rstrip("=")  # 128 bits, 22 characters


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def find(token: str) -> Slideshow | None:
    """The slideshow a token opens, whether or not it still plays (see :func:`is_live`)."""
    if not token or len(token) > 64:
        return None
    wanted = _hash(token)
    show = Slideshow.get_or_none(Slideshow.token_hash == wanted)
    if show is None or not hmac.compare_digest(show.token_hash, wanted):
        return None
    return show


def is_live(show: Slideshow, now: dt.datetime | None = None) -> bool:
    """Not revoked, not past its end date, and its owner still exists."""
    now = now or utcnow()
    return show.revoked_at is None and (show.ends_at is None or show.ends_at > now)


def new_code() -> str:
    return "".join(secrets.choice(CODE_LETTERS) for _ in range(6))


# ----------------------------------------------------------------- settings


def _clock(value, field: str):
    if value is None:
        return None
    try:
        hours, minutes = str(value).split(":")
        if len(hours) <= 2 and len(minutes) == 2 and 0 <= int(hours) < 24 and 0 <= int(minutes) < 60:
            return f"{int(hours):02d}:{int(minutes):02d}"
    except ValueError:
        pass
    raise PicupError("invalid_value", field=field)


def clean_settings(given: dict, current: dict | None = None) -> dict:
    """Known settings only, each checked; missing ones keep their current value."""
    result = dict(current or DEFAULTS)
    for key, value in given.items():
        if key not in DEFAULTS:
            continue
        if key == "seconds" or key == "video_limit":
            if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 3600:
                raise PicupError("invalid_value", field=key)
        elif key in ("show_date", "show_title", "show_clock", "download"):
            if not isinstance(value, bool):
                raise PicupError("invalid_value", field=key)
        elif key == "order" and value not in ORDERS or key == "videos" and value not in VIDEOS:
            raise PicupError("invalid_value", field=key)
        elif key == "fit" and value not in FITS:
            raise PicupError("invalid_value", field=key)
        elif key in ("quiet_from", "quiet_to"):
            value = _clock(value, key)
        result[key] = value
    if (result["quiet_from"] is None) != (result["quiet_to"] is None):
        raise PicupError("invalid_value", field="quiet_to" if result["quiet_to"] is None else "quiet_from")
    return result


def settings_of(show: Slideshow) -> dict:
    return {**DEFAULTS, **json.loads(show.settings or "{}")}


def _ends_at(value):
    if value is None:
        return None
    try:
        moment = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise PicupError("invalid_value", field="ends_at") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC).replace(tzinfo=None)


# --------------------------------------------------------------- the owner


def create(owner: User, data: dict, secret_key: str) -> tuple[Slideshow, str]:
    """A new slideshow from ``{"album_id"} | {"source"}`` plus settings; returns it and its token."""
    album = None
    if data.get("album_id") is not None:
        if not isinstance(data["album_id"], int):
            raise PicupError("invalid_value", field="album_id")
        album = library.get_album(owner, data["album_id"])
        source = "album"
    else:
        source = data.get("source")
        if source not in SOURCES or source == "album":
            raise PicupError("missing_field" if source is None else "invalid_value", field="source")
    settings = clean_settings(data.get("settings") or {k: v for k, v in data.items() if k in DEFAULTS})
    nonce = secrets.token_hex(16)
    token = token_for(nonce, secret_key)
    with database.atomic():
        show = Slideshow.create(
            owner=owner,
            nonce=nonce,
            token_hash=_hash(token),
            code=_free_code(),
            code_expires_at=utcnow() + dt.timedelta(minutes=CODE_MINUTES),
            album=album,
            source=source,
            settings=json.dumps(settings),
            paused=bool(data.get("paused", False)),
            ends_at=_ends_at(data.get("ends_at")),
        )
    return show, token


def _free_code() -> str:
    while True:
        code = new_code()
        if not Slideshow.select().where(Slideshow.code == code).exists():
            return code


def owned(owner: User, show_id: int) -> Slideshow:
    show = Slideshow.get_or_none((Slideshow.id == show_id) & (Slideshow.owner == owner))
    if show is None or show.revoked_at is not None:
        raise PicupError("not_found")
    return show


def list_for(owner: User) -> list[Slideshow]:
    return list(
        Slideshow.select()
        .where((Slideshow.owner == owner) & Slideshow.revoked_at.is_null())
        .order_by(Slideshow.created_at.desc())
    )


def update(show: Slideshow, data: dict) -> Slideshow:
    """Change settings, pause or resume, set or clear the end date, or ask for a new short code."""
    fields = {"updated_at": utcnow()}
    if "settings" in data or any(k in DEFAULTS for k in data):
        given = data.get("settings") if isinstance(data.get("settings"), dict) else {}
        given = {**given, **{k: v for k, v in data.items() if k in DEFAULTS}}
        fields["settings"] = json.dumps(clean_settings(given, settings_of(show)))
    if "paused" in data:
        if not isinstance(data["paused"], bool):
            raise PicupError("invalid_value", field="paused")
        fields["paused"] = data["paused"]
    if "ends_at" in data:
        fields["ends_at"] = _ends_at(data["ends_at"])
    if data.get("new_code"):
        fields["code"] = _free_code()
        fields["code_expires_at"] = utcnow() + dt.timedelta(minutes=CODE_MINUTES)
    Slideshow.update(**fields).where(Slideshow.id == show.id).execute()
    return Slideshow.get_by_id(show.id)


def revoke(show: Slideshow) -> None:
    """Turn the link off for good: the TV shows "turned off" at its next request."""
    Slideshow.update(revoked_at=utcnow(), code=None, updated_at=utcnow()).where(Slideshow.id == show.id).execute()


def title(show: Slideshow, translate) -> str:
    if show.source == "album":
        return show.album.title
    return translate(f"pages.tv_source_{show.source}")


def to_json(show: Slideshow, token: str, base_url: str, translate) -> dict:
    now = utcnow()
    code_live = show.code and show.code_expires_at and show.code_expires_at > now
    return {
        "id": show.id,
        "token": token,
        "url": f"{base_url}/tv/{token}",
        "code": show.code if code_live else None,
        "code_url": f"{base_url}/tv",
        "code_expires_at": library.iso(show.code_expires_at) if code_live else None,
        "source": show.source,
        "album_id": show.album_id,
        "title": title(show, translate),
        "settings": settings_of(show),
        "paused": show.paused,
        "ends_at": library.iso(show.ends_at),
        "created_at": library.iso(show.created_at),
        "last_seen_at": library.iso(show.last_seen_at),
    }


# ------------------------------------------------------- what a TV shows


def _query(show: Slideshow, today: dt.date | None = None):
    """The media a slideshow may show (never trashed, only rendered ones)."""
    owner = show.owner
    base = Media.select().where(
        Media.trashed_at.is_null() & (Media.status == "ready") & (Media.render_status == "ready")
        & ~live_photos.is_motion()  # a Live Photo shows as its still
    )
    if show.source == "album":
        album = show.album
        if library.album_role(owner, album) is None:  # the album is no longer shared with the owner
            return base.where(pw.SQL("0"))
        return base.join(AlbumMedia, on=(AlbumMedia.media == Media.id)).where(AlbumMedia.album == album)
    mine = base.where(Media.owner == owner)
    if show.source == "all":
        return mine
    if show.source == "favorites":
        in_shared = AlbumMedia.select(AlbumMedia.media).where(AlbumMedia.album.in_(library.readable_albums(owner)))
        return base.join(Favorite, on=(Favorite.media == Media.id)).where(
            (Favorite.user == owner) & ((Media.owner == owner) | Media.id.in_(in_shared))
        )
    if show.source == "recent":
        since = utcnow() - dt.timedelta(days=RECENT_DAYS)
        return mine.where((Media.taken_at >= since) | (Media.created_at >= since))
    if show.source == "on_this_day":
        today = today or dt.date.today()
        # the day as the camera's clock showed it, where the photo was taken
        shift = pw.fn.printf("%+d minutes", pw.fn.coalesce(Media.taken_at_offset, 0))
        local_day = pw.fn.strftime("%m-%d", Media.taken_at, shift)
        local_year = pw.fn.strftime("%Y", Media.taken_at, shift)
        return mine.where((local_day == today.strftime("%m-%d")) & (local_year < f"{today.year:04d}"))
    return base.where(pw.SQL("0"))


def _sample(show: Slideshow) -> int:
    """Which hourly draw a shuffled slideshow is on (the same for every request in the hour)."""
    return int(time.time() // SAMPLE_SECONDS) ^ show.id


def items(show: Slideshow, order: str) -> list[Media]:
    """What the TV plays, at most FEED_LIMIT. Shuffled: all of them when they fit, else this
    hour's random draw (the TV shuffles what it gets; the draw changes the feed's version)."""
    query = _query(show)
    if order == "oldest":
        return list(query.order_by(Media.taken_at.asc(), Media.id.asc()).limit(FEED_LIMIT))
    if order == "newest":
        return list(query.order_by(Media.taken_at.desc(), Media.id.desc()).limit(FEED_LIMIT))
    ids = [row[0] for row in query.select(Media.id).order_by(Media.id).tuples()]
    if len(ids) > FEED_LIMIT:
        ids = random.Random(_sample(show)).sample(ids, FEED_LIMIT)
    return list(Media.select().where(Media.id.in_(ids)).order_by(Media.id))


def shows(show: Slideshow, media_id: int) -> Media | None:
    """The media item if this slideshow may show it, else None."""
    return _query(show).where(Media.id == media_id).first()


def version(show: Slideshow) -> str:
    """Changes when the settings or the set of photos change (the TV then refreshes)."""
    query = _query(show)
    count, newest = query.select(pw.fn.count(Media.id), pw.fn.max(Media.id)).scalar(as_tuple=True)
    draw = _sample(show) if settings_of(show)["order"] == "shuffle" and count > FEED_LIMIT else 0
    raw = f"{show.updated_at.isoformat()}|{show.paused}|{count}|{newest}|{draw}"
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def seen(show: Slideshow) -> None:
    """Note when a TV last asked (at most once a minute: no write per photo)."""
    now = utcnow()
    if show.last_seen_at is None or now - show.last_seen_at > dt.timedelta(minutes=1):
        Slideshow.update(last_seen_at=now).where(Slideshow.id == show.id).execute()


# ----------------------------------------------------------------- pairing


def pair(code: str) -> Slideshow | None:
    """The slideshow a short code pairs with (once; the code is then used up)."""
    code = "".join(ch for ch in (code or "").upper() if ch.isalnum())
    if len(code) != 6:
        return None
    show = Slideshow.get_or_none(Slideshow.code == code)
    if show is None or show.code_expires_at is None or show.code_expires_at <= utcnow() or not is_live(show):
        return None
    Slideshow.update(code=None, code_expires_at=None).where(Slideshow.id == show.id).execute()
    return show
