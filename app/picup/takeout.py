"""The date a photo was taken, from the files Google Takeout puts beside it.

A Takeout export gives every file the date of the export, so a photo without a camera
date (a scan, a picture sent in a chat, a screenshot) would land on that one day. Each
photo has a JSON file beside it whose ``photoTakenTime`` is the date Google Photos
showed. Its file name is not reliable (``IMG_1.jpg.json``, then
``IMG_1.jpg.supplemental-metadata.json``, cut short when long), but its ``title`` is
the photo's file name, so the files of a folder are matched by title. A title found
twice in one folder (two phones' IMG_0001.jpg) is ambiguous and not used.

The date found stands where the file's own date would: a camera date still wins.
"""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

MAX_SIDECAR = 1024 * 1024  # bytes; a Takeout sidecar is a few hundred


def _key(name: str) -> str:
    return unicodedata.normalize("NFC", name)  # a Mac's unzip writes names decomposed


class TakeoutDates:
    """Reads each folder's sidecars once, when a file of that folder is first asked about."""

    def __init__(self):
        self._folders: dict[Path, dict[str, int | None]] = {}

    def taken_ms(self, path: Path) -> int | None:
        """When Google Photos said ``path`` was taken, in milliseconds since 1970, or None."""
        found = self._folders.get(path.parent)
        if found is None:
            found = self._folders[path.parent] = _read_folder(path.parent)
        return found.get(_key(path.name))


def _read_folder(folder: Path) -> dict[str, int | None]:
    dates: dict[str, int | None] = {}
    try:
        sidecars = [p for p in folder.iterdir() if p.suffix.lower() == ".json" and p.is_file()]
    except OSError:
        return dates
    for sidecar in sidecars:
        moment = _read_sidecar(sidecar)
        if moment is None:
            continue
        title, taken = moment
        dates[title] = None if title in dates else taken  # twice in one folder: ambiguous
    return dates


def _read_sidecar(sidecar: Path) -> tuple[str, int] | None:
    try:
        if sidecar.stat().st_size > MAX_SIDECAR:
            return None
        data = json.loads(sidecar.read_bytes())
        title = data["title"]
        seconds = int(data["photoTakenTime"]["timestamp"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(title, str) or not title or seconds <= 0:
        return None
    return _key(title), seconds * 1000
