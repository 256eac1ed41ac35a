"""The date a photo was taken, from the files Google Takeout puts beside it.

A Takeout export gives every file the date of the export, so a photo without a camera
date (a scan, a picture sent in a chat, a screenshot) would land on that one day. Each
photo has a JSON file beside it whose ``photoTakenTime`` is the date Google Photos
showed. Its file name is not reliable (``IMG_1.jpg.json``, then
``IMG_1.jpg.supplemental-metadata.json``, cut short when long), but its ``title`` is
the photo's file name, so the files of a folder are matched by title. A title found
twice in one folder (two phones' IMG_0001.jpg) is ambiguous and not used.

The date found stands where the file's own date would: a camera date still wins.

A Live Photo (iPhone) or motion photo (Android) comes out as the photo with its JSON
file and a short video of the same name without one (``IMG_1.HEIC``,
``IMG_1.HEIC.json``, ``IMG_1.MP4``; a Pixel's ``PXL_1.MP.jpg`` with ``PXL_1.MP``),
and the video has lost the identifier the phone gave both. :meth:`TakeoutDates.live_id`
gives such a pair an identifier of its own, so the library ties them as the phone did.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

MAX_SIDECAR = 1024 * 1024  # bytes; a Takeout sidecar is a few hundred
_MOTION_SUFFIXES = {".mp4", ".mov", ".mp", ".m4v", ".3gp"}  # what Takeout names a Live Photo's video


def _key(name: str) -> str:
    return unicodedata.normalize("NFC", name)  # a Mac's unzip writes names decomposed


@dataclass
class _Folder:
    dates: dict[str, int | None] = field(default_factory=dict)  # by title
    stems: dict[str, list[str]] = field(default_factory=dict)  # the other files' names (as on disk), by _stem


def _stem(name: str) -> str:
    stem = _key(name).rsplit(".", 1)[0].casefold()
    return stem[:-3] if stem.endswith(".mp") else stem  # a Pixel's motion photo: X.MP.jpg with X.MP


class TakeoutDates:
    """Reads each folder's sidecars once, when a file of that folder is first asked about."""

    def __init__(self):
        self._folders: dict[Path, _Folder] = {}

    def _folder(self, path: Path) -> _Folder:
        found = self._folders.get(path.parent)
        if found is None:
            found = self._folders[path.parent] = _read_folder(path.parent)
        return found

    def taken_ms(self, path: Path) -> int | None:
        """When Google Photos said ``path`` was taken, in milliseconds since 1970, or None."""
        return self._folder(path).dates.get(_key(path.name))

    def live_id(self, path: Path) -> str | None:
        """An identifier shared by a Takeout photo and the short video of the same name beside
        it (two files of that name: the photo with a JSON file, the video without), or None.

        It is made from the name and the two files' sizes, not from where the export sits,
        so the copy of the pair in an album folder, or the same export unpacked elsewhere
        and imported again, gives the same identifier (also where a folder holds two
        photos of one name, IMG_1234.HEIC and IMG_1234(1).HEIC, whose dates are not used)."""
        folder = self._folder(path)
        names = folder.stems.get(_stem(path.name), [])
        described = [name for name in names
                     if _key(name) in folder.dates or _key(_without_copy_number(name)) in folder.dates]
        if len(names) != 2 or len(described) != 1:
            return None
        (photo,) = described
        (video,) = (name for name in names if name != photo)
        if "." + video.rsplit(".", 1)[-1].casefold() not in _MOTION_SUFFIXES:
            return None
        try:
            sizes = [(path.parent / name).stat().st_size for name in (photo, video)]
        except OSError:
            return None
        digest = hashlib.sha256(f"{_stem(photo)}\0{sizes[0]}\0{sizes[1]}".encode("utf-8", "surrogateescape"))
        return "TAKEOUT-" + digest.hexdigest()[:32].upper()


def _without_copy_number(name: str) -> str:
    """Takeout names the second IMG_1234.HEIC of a folder IMG_1234(1).HEIC; its JSON keeps the title."""
    return re.sub(r"\(\d+\)(?=\.[^.]*$)", "", name)


def _read_folder(folder: Path) -> _Folder:
    found = _Folder()
    dates = found.dates
    try:
        files = [p for p in folder.iterdir() if p.is_file()]
    except OSError:
        return found
    sidecars = [p for p in files if p.suffix.lower() == ".json"]
    for other in files:
        if other.suffix.lower() != ".json":
            found.stems.setdefault(_stem(other.name), []).append(other.name)
    for sidecar in sidecars:
        moment = _read_sidecar(sidecar)
        if moment is None:
            continue
        title, taken = moment
        dates[title] = None if title in dates else taken  # twice in one folder: ambiguous
    return found


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
