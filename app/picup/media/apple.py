"""What an iPhone writes to tie a Live Photo's still and its short video together.

The still carries the pair's identifier in Apple's EXIF maker note (tag 17,
a UUID string); the video carries the same one as the QuickTime metadata key
``com.apple.quicktime.content.identifier``. Layout of the maker note, as
ExifTool documents it: ``b"Apple iOS\\0"``, a 2-byte version, a byte-order
mark (``MM`` or ``II``), then one TIFF-style directory whose value offsets
count from the start of the maker note.
"""

from __future__ import annotations

import re
import struct

_HEADER = b"Apple iOS\x00"
_DIRECTORY = 14  # header, version, byte order
_CONTENT_ID_TAG = 17
_ASCII = 2
_ID = re.compile(r"[0-9A-Za-z][0-9A-Za-z-]{7,63}")


def clean_id(value) -> str | None:
    """The identifier in one spelling (upper case), or None for anything that is not one."""
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    if not isinstance(value, str):
        return None
    value = value.replace("\x00", "").strip()
    return value.upper() if _ID.fullmatch(value) else None


def photo_content_id(maker_note) -> str | None:
    """The Live Photo identifier in an iPhone's maker note; None for any other maker note."""
    if not isinstance(maker_note, bytes) or not maker_note.startswith(_HEADER) or len(maker_note) < _DIRECTORY + 2:
        return None
    order = {b"MM": ">", b"II": "<"}.get(maker_note[12:14])
    if order is None:
        return None
    (count,) = struct.unpack_from(order + "H", maker_note, _DIRECTORY)
    for index in range(count):
        at = _DIRECTORY + 2 + 12 * index
        if at + 12 > len(maker_note):
            return None
        tag, kind, length, value = struct.unpack_from(order + "HHI4s", maker_note, at)
        if tag != _CONTENT_ID_TAG:
            continue
        if kind != _ASCII or length > 256:
            return None
        if length <= 4:
            raw = value[:length]
        else:
            (offset,) = struct.unpack(order + "I", value)
            raw = maker_note[offset:offset + length]
        return clean_id(raw)
    return None
