"""Reading what a photo says about itself: size and when it was taken.

Only the formats Picup accepts are opened, and only headers are read here:
no pixels are decoded, so a decompression bomb costs nothing at this step.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from PIL import Image

log = logging.getLogger(__name__)

ACCEPTED_FORMATS = ["JPEG", "PNG", "WEBP", "GIF", "HEIF", "AVIF"]
_EXIF_IFD = 0x8769
_ORIENTATION = 0x0112
_DATETIME_ORIGINAL = 0x9003
_DATETIME_DIGITIZED = 0x9004
_OFFSET_TIME_ORIGINAL = 0x9011
_DATETIME = 0x0132

try:  # iPhone photos
    import pillow_heif

    pillow_heif.register_heif_opener()
except ImportError:  # pragma: no cover - a dependency, but keep the server up without it
    log.warning("pillow-heif is missing: HEIC photos will have no size or date")


@dataclass(frozen=True)
class ImageInfo:
    width: int | None = None
    height: int | None = None
    taken_at: dt.datetime | None = None  # naive UTC


def _parse_exif_time(value, offset) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = dt.datetime.strptime(value.strip()[:19], "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None
    if moment.year < 1840:
        return None
    if isinstance(offset, str) and len(offset.strip()) == 6:
        sign = -1 if offset.strip()[0] == "-" else 1
        hours, minutes = offset.strip()[1:].split(":")
        moment -= sign * dt.timedelta(hours=int(hours), minutes=int(minutes))
    return moment


def probe_image(path) -> ImageInfo:
    """Size after EXIF orientation and the EXIF date taken; empty info if unreadable."""
    try:
        with Image.open(path, formats=ACCEPTED_FORMATS) as image:
            width, height = image.size
            exif = image.getexif()
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        log.info("could not read image header", extra={"error": str(exc)})
        return ImageInfo()
    if exif.get(_ORIENTATION) in (5, 6, 7, 8):
        width, height = height, width
    details = exif.get_ifd(_EXIF_IFD)
    taken = _parse_exif_time(details.get(_DATETIME_ORIGINAL), details.get(_OFFSET_TIME_ORIGINAL))
    taken = taken or _parse_exif_time(details.get(_DATETIME_DIGITIZED), None)
    taken = taken or _parse_exif_time(exif.get(_DATETIME), None)
    return ImageInfo(width=width, height=height, taken_at=taken)
