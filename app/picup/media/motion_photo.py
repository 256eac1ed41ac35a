"""Android motion photos: the few seconds of video are inside the photo file itself.

Pixel phones ("Top Shot", on by default) and Samsung Galaxy phones ("Motion photo")
append a short MP4 to the JPEG (or HEIC). Any viewer shows the still; the video is
found from the photo's XMP:

- Motion Photo 1.0 (Google's format, also written by recent Samsung phones): the
  ``Container:Directory`` lists the files one after the other; the item with
  ``Item:Semantic="MotionPhoto"`` is the video and its ``Item:Length`` the number of
  bytes at the end of the file.
- Micro Video (Pixel 2-4, ``MVIMG_*.jpg``): ``MicroVideoOffset`` counts the same bytes.
- Older Samsung phones write no such XMP: the MP4 follows the text
  ``MotionPhoto_Data`` in the trailer after the JPEG, and Samsung's own index follows it.
  Their HEIC photos carry it in a top-level ``mpvd`` box instead.

Whatever is found must start like an MP4 (an ``ftyp`` box) and end inside the file,
or it is ignored: a photo edited on a computer often keeps the XMP but loses the video.
Nothing is taken out of the original; the worker reads the video from it.
"""

from __future__ import annotations

import os
import re
import struct

HEAD = 256 * 1024  # the XMP sits in the first segments of a JPEG, the meta box of a HEIC
TAIL = 32 * 1024 * 1024  # how far from the end an older Samsung's video may start (a few MB)
SAMSUNG_MARKER = b"MotionPhoto_Data"

_ITEM = re.compile(rb"<(?:\w+:)?Item\b[^>]*>|<rdf:li\b[^>]*>", re.S)
_ITEM_SEMANTIC = re.compile(rb'Item:Semantic\s*=\s*["\']MotionPhoto["\']')
_ITEM_LENGTH = re.compile(rb'Item:Length\s*=\s*["\'](\d+)["\']')
_MICRO_VIDEO = re.compile(rb'MicroVideoOffset\s*=\s*["\'](\d+)["\']|MicroVideoOffset>(\d+)<')
_SWITCHED_OFF = re.compile(rb'MotionPhoto\s*=\s*["\']0["\']|MotionPhoto>0<|MicroVideo\s*=\s*["\']0["\']')


def find_video(path: str) -> tuple[int, int] | None:
    """Where the motion photo's video is inside the file at ``path``: (offset, length), or None."""
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as fh:
            head = fh.read(min(size, HEAD))
            length = _length_from_xmp(head)
            if length is not None:
                found = (size - length, length) if 0 < length < size else None
                return found if found and _starts_like_mp4(fh, found[0]) else None
            if head[4:8] == b"ftyp":  # a HEIC (ISO boxes all the way)
                return _samsung_box(fh, size)
            return _after_samsung_marker(fh, size) if b"samsung" in head.lower() else None
    except OSError:
        return None


def _length_from_xmp(head: bytes) -> int | None:
    if b"MotionPhoto" not in head and b"MicroVideo" not in head:
        return None
    if _SWITCHED_OFF.search(head):
        return None
    for tag in _ITEM.finditer(head):
        if _ITEM_SEMANTIC.search(tag.group(0)) and (length := _ITEM_LENGTH.search(tag.group(0))):
            return int(length.group(1))
    if micro := _MICRO_VIDEO.search(head):
        return int(micro.group(1) or micro.group(2))
    return None


def _starts_like_mp4(fh, offset: int) -> bool:
    fh.seek(offset)
    header = fh.read(8)
    return len(header) == 8 and header[4:8] == b"ftyp" and struct.unpack(">I", header[:4])[0] >= 8


def _after_samsung_marker(fh, size: int) -> tuple[int, int] | None:
    start = max(0, size - TAIL)
    fh.seek(start)
    tail = fh.read()
    at = tail.rfind(SAMSUNG_MARKER)
    if at < 0:
        return None
    offset = start + at + len(SAMSUNG_MARKER)
    if not _starts_like_mp4(fh, offset):
        return None
    length = _boxes_length(tail, at + len(SAMSUNG_MARKER))
    return (offset, length) if length else None


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


def _boxes_length(data: bytes, start: int) -> int:
    """How many bytes from ``start`` are MP4 boxes, one after another (stops at Samsung's index)."""
    at = start
    while at + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[at:at + 8])
        if size == 1 and at + 16 <= len(data):
            size = struct.unpack(">Q", data[at + 8:at + 16])[0]
        elif size == 0:
            size = len(data) - at
        if size < 8 or at + size > len(data) or not kind.isalnum() and kind not in (b"free", b"skip"):
            break
        at += size
    return at - start
