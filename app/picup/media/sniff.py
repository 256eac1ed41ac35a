"""What a file is, told from its first bytes — never from its name."""

from __future__ import annotations

import struct
from dataclasses import dataclass

HEAD_BYTES = 4096


@dataclass(frozen=True)
class FileType:
    media_type: str
    kind: str  # "photo" | "video"
    extension: str


JPEG = FileType("image/jpeg", "photo", "jpg")
PNG = FileType("image/png", "photo", "png")
GIF = FileType("image/gif", "photo", "gif")
WEBP = FileType("image/webp", "photo", "webp")
HEIC = FileType("image/heic", "photo", "heic")
HEIF = FileType("image/heif", "photo", "heif")
AVIF = FileType("image/avif", "photo", "avif")
MP4 = FileType("video/mp4", "video", "mp4")
MOV = FileType("video/quicktime", "video", "mov")
M4V = FileType("video/x-m4v", "video", "m4v")
THREE_GP = FileType("video/3gpp", "video", "3gp")
THREE_G2 = FileType("video/3gpp2", "video", "3g2")
MKV = FileType("video/x-matroska", "video", "mkv")
WEBM = FileType("video/webm", "video", "webm")
AVI = FileType("video/x-msvideo", "video", "avi")

ALL = (JPEG, PNG, GIF, WEBP, HEIC, HEIF, AVIF, MP4, MOV, M4V, THREE_GP, THREE_G2, MKV, WEBM, AVI)

_IMAGE_BRANDS = {
    b"avif": AVIF, b"avis": AVIF,
    b"heic": HEIC, b"heix": HEIC, b"heim": HEIC, b"heis": HEIC, b"hevc": HEIC, b"hevx": HEIC,
    b"mif1": HEIF, b"msf1": HEIF,
}
_VIDEO_BRANDS = {
    b"qt  ": MOV,
    b"M4V ": M4V, b"M4VH": M4V, b"M4VP": M4V,
    b"3gp4": THREE_GP, b"3gp5": THREE_GP, b"3gp6": THREE_GP, b"3gp7": THREE_GP, b"3gg6": THREE_GP,
    b"3ge6": THREE_GP, b"3gs7": THREE_GP,
    b"3g2a": THREE_G2, b"3g2b": THREE_G2, b"3g2c": THREE_G2,
    b"isom": MP4, b"iso2": MP4, b"iso3": MP4, b"iso4": MP4, b"iso5": MP4, b"iso6": MP4,
    b"mp41": MP4, b"mp42": MP4, b"avc1": MP4, b"dash": MP4, b"MSNV": MP4, b"XAVC": MP4,
    b"mmp4": MP4, b"f4v ": MP4, b"NDAS": MP4,
}
# Old QuickTime files may open with one of these atoms instead of "ftyp".
_QUICKTIME_ATOMS = {b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"}


def _iso_bmff(head: bytes) -> FileType | None:
    size = struct.unpack(">I", head[:4])[0]
    if size < 16 or size > len(head):
        size = min(len(head), 256)
    major = head[8:12]
    compatible = [head[i : i + 4] for i in range(16, size - 3, 4)]
    if major in _IMAGE_BRANDS:
        # A HEIF container holding AVIF says so among its compatible brands.
        if major in (b"mif1", b"msf1"):
            for brand in compatible:
                if brand in (b"avif", b"avis", b"heic", b"heix"):
                    return _IMAGE_BRANDS[brand]
        return _IMAGE_BRANDS[major]
    if major in _VIDEO_BRANDS:
        return _VIDEO_BRANDS[major]
    for brand in compatible:
        if brand in _IMAGE_BRANDS:
            return _IMAGE_BRANDS[brand]
    for brand in compatible:
        if brand in _VIDEO_BRANDS:
            return _VIDEO_BRANDS[brand]
    return None


def _matroska(head: bytes) -> FileType | None:
    position = head.find(b"\x42\x82")  # EBML DocType element
    if position < 0:
        return None
    length_byte = head[position + 2] if position + 2 < len(head) else 0
    if length_byte & 0x80:
        doctype = head[position + 3 : position + 3 + (length_byte & 0x7F)]
        if doctype == b"webm":
            return WEBM
        if doctype == b"matroska":
            return MKV
    return None


def sniff(head: bytes) -> FileType | None:
    """The accepted type these first bytes (at least 64, ideally 4 KiB) belong to, or None."""
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return GIF
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return WEBP
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return AVI
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return _matroska(head[:HEAD_BYTES])
    if len(head) >= 12 and head[4:8] == b"ftyp":
        return _iso_bmff(head)
    if len(head) >= 8 and head[4:8] in _QUICKTIME_ATOMS:
        return MOV
    return None


def sniff_file(path) -> FileType | None:
    with open(path, "rb") as fh:
        return sniff(fh.read(HEAD_BYTES))
