"""Android motion photos: the few seconds of video are inside the photo file itself.

Pixel phones ("Top Shot", on by default) and Samsung Galaxy phones ("Motion photo")
append a short MP4 to the JPEG (or HEIC). Any viewer shows the still; the video is
found from the photo's XMP:

- Motion Photo 1.0 (Google's format, also written by recent Samsung phones): the
  ``Container:Directory`` lists the files one after the other; the item with
  ``Item:Semantic="MotionPhoto"`` is the video and its ``Item:Length`` the number of
  bytes at the end of the file.
- Micro Video (Pixel 2-4, ``MVIMG_*.jpg``): ``MicroVideoOffset`` counts the same bytes.
- Samsung Galaxy phones keep the MP4 as the ``MotionPhoto_Data`` record of their own
  trailer after the JPEG, listed in Samsung's index at the very end of the file (older
  ones write no XMP for it; newer ones write XMP whose length does not always land on the
  video). Their HEIC photos carry it in a top-level ``mpvd`` box instead.

Whatever is found must start like an MP4 (an ``ftyp`` box) and end inside the file,
or it is ignored: a photo edited on a computer often keeps the XMP but loses the video.
Nothing is taken out of the original; the worker reads the video from it.
"""

from __future__ import annotations

import os
import re
import struct

HEAD = 256 * 1024  # the XMP sits in the first segments of a JPEG, the meta box of a HEIC
SEF_INDEX_MAX = 64 * 1024  # Samsung's index at the end of the file: a few dozen bytes per record
MOTION_PHOTO_DATA = 0x0A30  # Samsung's record type for the video

_ITEM = re.compile(rb"<rdf:li\b.*?</rdf:li>|<(?:\w+:)?Item\b[^>]*>", re.S)
_SEMANTIC = re.compile(rb'Semantic\s*=\s*["\']MotionPhoto["\']|Semantic>\s*MotionPhoto\s*<')
_LENGTH = re.compile(rb'Item:Length\s*=\s*["\'](\d+)["\']|Item:Length>\s*(\d+)\s*<')
_PADDING = re.compile(rb'Item:Padding\s*=\s*["\'](\d+)["\']|Item:Padding>\s*(\d+)\s*<')
_MICRO_VIDEO = re.compile(rb'MicroVideoOffset\s*=\s*["\'](\d+)["\']|MicroVideoOffset>\s*(\d+)\s*<')
_SWITCHED_OFF = re.compile(rb'MotionPhoto\s*=\s*["\']0["\']|MotionPhoto>\s*0\s*<|MicroVideo\s*=\s*["\']0["\']')


def find_video(path: str) -> tuple[int, int] | None:
    """Where the motion photo's video is inside the file at ``path``: (offset, length), or None.

    Each place the phone may have said is tried in turn, and the first that holds an MP4
    wins: Galaxy phones write XMP whose length can be off by their own trailer's bytes,
    so Samsung's index is read too. Only the head and the last few kilobytes are read.
    A file that cannot be read raises OSError: "no video" is not said of what was not read."""
    size = os.path.getsize(path)
    with open(path, "rb") as fh:
        head = fh.read(min(size, HEAD))
        if _SWITCHED_OFF.search(head):
            return None
        for length, padding in _lengths_from_xmp(head):
            for offset in (size - length, size - length - padding):
                if 0 <= offset < size and _starts_like_mp4(fh, offset):
                    return offset, min(length, size - offset)
        found = _samsung_index(fh, size)
        if found is None and head[4:8] == b"ftyp":  # a HEIC (ISO boxes all the way)
            found = _samsung_box(fh, size)
        return found


def _number(match) -> int:
    return int(match.group(1) or match.group(2))


def _lengths_from_xmp(head: bytes) -> list[tuple[int, int]]:
    """(length, padding) of the video as the XMP gives it, most specific first."""
    if b"MotionPhoto" not in head and b"MicroVideo" not in head:
        return []
    found = []
    for item in _ITEM.finditer(head):
        text = item.group(0)
        if _SEMANTIC.search(text) and (length := _LENGTH.search(text)):
            padding = _PADDING.search(text)
            found.append((_number(length), _number(padding) if padding else 0))
    if micro := _MICRO_VIDEO.search(head):
        found.append((_number(micro), 0))
    return [(length, padding) for length, padding in found if length > 0]


def _starts_like_mp4(fh, offset: int) -> bool:
    fh.seek(offset)
    header = fh.read(8)
    return len(header) == 8 and header[4:8] == b"ftyp" and struct.unpack(">I", header[:4])[0] >= 8


def _samsung_index(fh, size: int) -> tuple[int, int] | None:
    """The video from Samsung's trailer index: the file ends with the index's size and
    ``SEFT``; the index (``SEFH``) lists each record by its distance back from the index.
    A record is 2 + 2 bytes (zero, type), the name's length, the name, then the data."""
    if size < 16:
        return None
    fh.seek(size - 8)
    index_size, magic = struct.unpack("<I4s", fh.read(8))
    if magic != b"SEFT" or not 12 <= index_size <= min(SEF_INDEX_MAX, size - 8):
        return None
    index_at = size - 8 - index_size
    fh.seek(index_at)
    index = fh.read(index_size)
    if index[:4] != b"SEFH":
        return None
    count = struct.unpack("<I", index[8:12])[0]
    for number in range(min(count, (len(index) - 12) // 12)):
        _zero, kind, back, length = struct.unpack("<HHII", index[12 + 12 * number:24 + 12 * number])
        if kind != MOTION_PHOTO_DATA or back > index_at or length < 8:
            continue
        record = index_at - back
        fh.seek(record)
        header = fh.read(8)
        name_length = struct.unpack("<I", header[4:8])[0] if len(header) == 8 else length
        offset, data = record + 8 + name_length, length - 8 - name_length
        if data > 0 and _starts_like_mp4(fh, offset):
            return offset, data
    return None


def _samsung_box(fh, size: int) -> tuple[int, int] | None:
    """A Samsung HEIC's video: the top-level ``mpvd`` box holds the MP4."""
    at = 0
    while at + 8 <= size:
        fh.seek(at)
        header = fh.read(16)
        length, kind = struct.unpack(">I4s", header[:8])
        skip = 8
        if length == 1 and len(header) == 16:
            length, skip = struct.unpack(">Q", header[8:16])[0], 16
        elif length == 0:
            length = size - at
        if length < skip or at + length > size:
            return None
        if kind == b"mpvd":
            found = (at + skip, length - skip)
            return found if _starts_like_mp4(fh, found[0]) else None
        at += length
    return None
