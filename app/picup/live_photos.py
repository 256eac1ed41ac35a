"""iPhone Live Photos: the still stands for the pair, its short video plays on request.

A Live Photo leaves the phone as two files, ``IMG_0001.HEIC`` and
``IMG_0001.MOV`` (copied by cable, from a computer, or chosen together on the
"Add photos" page), which carry the same identifier (see media/apple.py).
When the worker has read both, the video is tied to its still: the photos
page, albums, the trash and slideshows show the still alone, the viewer plays
the video on request, and trash and restore move both. Both originals are
kept, backed up and can be downloaded; nothing is merged or thrown away.
"""

from __future__ import annotations

import logging

import peewee as pw

from .models import Album, AlbumMedia, Media

log = logging.getLogger(__name__)

# An iPhone's Live Photo video lasts about three seconds. A longer video with
# the same identifier is left as a video of its own, never hidden behind a still.
MAX_SECONDS = 10.0


def is_motion():
    """The condition "a Live Photo's video": lists leave these out, their still shows instead."""
    return Media.live_photo.is_null(False)


def pair(media_id: int) -> Media | None:
    """Tie a just-read item to the other half of its Live Photo, if that is in the library.

    Call inside the write transaction that recorded the item's ``live_id``; the
    other half, read before or after, finds this one the same way. Returns the still.
    """
    media = Media.get_or_none(Media.id == media_id)
    if media is None or media.live_id is None or media.trashed_at is not None or media.live_photo_id:
        return None
    same = (
        (Media.owner == media.owner_id) & (Media.live_id == media.live_id) & (Media.status == "ready")
        & Media.trashed_at.is_null() & (Media.id != media.id)
    )
    if media.kind == "photo":
        still = media
        motion = _closest(media, Media.select().where(same & (Media.kind == "video") & Media.live_photo.is_null()
                                                      & (Media.duration <= MAX_SECONDS)))
    else:
        if media.duration is None or media.duration > MAX_SECONDS:
            return None
        motion = media
        motions = Media.alias()
        taken = motions.select(motions.live_photo).where(motions.live_photo.is_null(False))
        still = _closest(media, Media.select().where(same & (Media.kind == "photo") & Media.id.not_in(taken)))
    if still is None or motion is None or Media.select().where(Media.live_photo == still.id).exists():
        return None
    Media.update(live_photo=still.id).where(Media.id == motion.id).execute()
    # Albums the video went into (both files chosen on an album's page) show the still.
    for entry in AlbumMedia.select().where(AlbumMedia.media == motion.id):
        AlbumMedia.insert(album=entry.album_id, media=still.id, added_by=entry.added_by_id,
                          added_at=entry.added_at).on_conflict_ignore().execute()
    Album.update(cover=still.id).where(Album.cover == motion.id).execute()
    log.info("live photo paired", extra={"media_id": still.id, "video_id": motion.id})
    return still


def _closest(media: Media, candidates) -> Media | None:
    """The other half among ``candidates``: the one of the same name (an iPhone's edited copy,
    IMG_E0001.HEIC with IMG_E0001.MOV, shares the identifier of IMG_0001's pair), else the first."""
    found = list(candidates.order_by(Media.id).limit(20))
    return next((other for other in found if _stem(other) == _stem(media)), found[0] if found else None)


def _stem(media: Media) -> str:
    return (media.original_filename or "").rsplit(".", 1)[0].casefold()


def motions_for(media_ids: list[int], *, trashed: bool = False) -> dict[int, Media]:
    """The videos of the Live Photos among ``media_ids``, by still id: those out of the
    trash, or (``trashed``, for the trash list) those in it."""
    if not media_ids:
        return {}
    rows = Media.select().where(
        Media.live_photo.in_(media_ids) & Media.trashed_at.is_null(not trashed) & (Media.status == "ready")
    )
    return {row.live_photo_id: row for row in rows}


def with_motions(media_ids: list[int]) -> pw.Expression:
    """The condition "one of ``media_ids``, or the video of one of them"."""
    return Media.id.in_(media_ids) | Media.live_photo.in_(media_ids)


def still_trashed_too() -> pw.Expression:
    """For the trash list: a Live Photo's video whose still is in the trash as well."""
    stills = Media.alias()
    in_trash = stills.select(stills.id).where(stills.trashed_at.is_null(False))
    return is_motion() & Media.live_photo.in_(in_trash)  # never NULL, so it can be negated
