"""Favourites: each person marks the photos they love (a heart in the viewer).

A favourite is per person. It feeds the "Favourites" slideshow and the ``favorite`` field
of the media a person lists.
"""

from __future__ import annotations

from . import library
from .models import Favorite, Media, User


def set_favorite(user: User, media_id: int, on: bool) -> Media:
    """Mark or unmark an item the person can see (404 for anything else)."""
    media = library.get_media(user, media_id)
    if on:
        Favorite.insert(user=user, media=media).on_conflict_ignore().execute()
    else:
        Favorite.delete().where((Favorite.user == user) & (Favorite.media == media)).execute()
    return media


def favorite_ids(user: User, media_ids: list[int]) -> set[int]:
    """Which of ``media_ids`` the person has marked (one query per page of items)."""
    if not media_ids:
        return set()
    rows = Favorite.select(Favorite.media).where((Favorite.user == user) & Favorite.media.in_(media_ids))
    return {row.media_id for row in rows}
