"""A photo's renditions and what it says about itself, from one careful decode.

``render_photo`` turns an original into the two files the pages show — a WebP
thumbnail (fits 400x400) and a JPEG display size (fits 2048x2048, which the
old TV browsers can show) — plus a ThumbHash placeholder and the EXIF facts
(date taken, camera, GPS).

How the pixels are handled, in order:

1. Only the formats Picup accepts are opened, and the decompression-bomb
   limit is checked from the header, before any pixel is decoded.
2. Shrink first: a JPEG is decoded at 1/2, 1/4 or 1/8 scale when that still
   covers the display size (``draft``), then resized with Lanczos.
3. Then the EXIF orientation is applied, to the already small picture.
4. Colour: the embedded ICC profile is converted to sRGB; 16-bit, palette,
   grey and CMYK pictures become 8-bit RGB; transparency is flattened on white.
5. The files are written atomically (temp name, fsync, rename) and only once
   everything has been decoded and encoded, so a failure leaves nothing behind.

A truncated JPEG (an upload that stopped half way, a bad card) still gets
renditions, marked ``damaged``: it is decoded again from a private stream that
ends with the end-of-image marker libjpeg was waiting for — the same repair
Pillow's global ``ImageFile.LOAD_TRUNCATED_IMAGES`` switch makes, but confined
to this one call, so no other thread's decode ever becomes lenient.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import logging
import math
import os
import re
import tempfile
from dataclasses import dataclass

from PIL import Image, ImageCms, UnidentifiedImageError, features

from . import apple
from . import placeholder as _placeholder

log = logging.getLogger(__name__)

try:  # iPhone photos
    import pillow_heif

    pillow_heif.register_heif_opener()
    _HEIF = True
except ImportError:  # pragma: no cover - a dependency, but keep the server up without it
    _HEIF = False
    log.warning("pillow-heif is missing: HEIC photos cannot be shown")

# Pillow reads AVIF itself when it was built with libavif (the wheels are).
AVIF_SUPPORTED = features.check("avif")
HEIF_SUPPORTED = _HEIF
ACCEPTED_FORMATS = (
    ["JPEG", "PNG", "WEBP", "GIF"] + (["HEIF"] if _HEIF else []) + (["AVIF"] if AVIF_SUPPORTED else [])
)

THUMB_NAME = "thumb.webp"
DISPLAY_NAME = "display.jpg"
THUMB_BOX = 400
DISPLAY_BOX = 2048
# A JPEG decoded at reduced scale may come out this much under the display box
# (2000 instead of 2048 pixels) rather than be decoded in full and resized.
DRAFT_SLACK = 0.9
DISPLAY_QUALITY = 85
THUMB_QUALITY = 80
# Pillow's default limit (about a quarter of a gigabyte as RGBA), kept here so
# it holds even if Pillow's own guard is switched off, and refused from 1x of
# it (Pillow itself only warns between 1x and 2x).
MAX_PIXELS = 89_478_485
# JPEGs decode at 1/2, 1/4 or 1/8 scale (draft), so a 108 or 200 megapixel
# phone photo costs what a 12 MP one costs: they get a higher limit. Pillow's
# own guard is raised to match; the per-format check in _open() runs before
# any pixel is decoded, so other formats keep the lower limit.
JPEG_MAX_PIXELS = 268_435_456  # 16384 x 16384
Image.MAX_IMAGE_PIXELS = JPEG_MAX_PIXELS

_WHITE = (255, 255, 255)
_LANCZOS = Image.Resampling.LANCZOS
_BICUBIC = Image.Resampling.BICUBIC

# EXIF tags
_ORIENTATION = 0x0112
_MAKE = 0x010F
_MODEL = 0x0110
_DATETIME = 0x0132
_EXIF_IFD = 0x8769
_GPS_IFD = 0x8825
_MAKER_NOTE = 0x927C
_DATETIME_ORIGINAL = 0x9003
_DATETIME_DIGITIZED = 0x9004
_OFFSET_TIME = 0x9010
_OFFSET_TIME_ORIGINAL = 0x9011
_OFFSET_TIME_DIGITIZED = 0x9012
_GPS_LATITUDE_REF = 1
_GPS_LATITUDE = 2
_GPS_LONGITUDE_REF = 3
_GPS_LONGITUDE = 4

_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}

# Everything Pillow and its plugins raise for a file they cannot make sense of.
_DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, IndexError, TypeError, KeyError, RuntimeError)

_MESSAGES = {
    "decompression_bomb": "The photo is too large to open safely.",
    "unreadable": "The file is not a photo Picup can read, or it is damaged.",
}


class PhotoError(Exception):
    """A photo that cannot be rendered; ``code`` is ``decompression_bomb`` or ``unreadable``."""

    def __init__(self, code: str, message: str | None = None):
        super().__init__(message or _MESSAGES.get(code, "The photo could not be read."))
        self.code = code

    def __reduce__(self):  # survives the trip back from a worker process
        return type(self), (self.code, str(self))


@dataclass(frozen=True)
class PhotoResult:
    thumb_path: str
    display_path: str
    placeholder: str
    width: int
    height: int
    taken_at: dt.datetime | None
    taken_at_offset: int | None
    taken_at_exif_field: str | None
    camera_make: str | None
    camera_model: str | None
    latitude: float | None
    longitude: float | None
    damaged: bool
    live_id: str | None = None  # an iPhone Live Photo's identifier, shared with its video


class _DamagedJpeg(Exception):
    """The JPEG's header was fine but its pixels stopped short."""


def render_photo(src_path: str, out_dir: str) -> PhotoResult:
    """Write ``thumb.webp`` and ``display.jpg`` for one photo into ``out_dir`` and describe it.

    Raises ``PhotoError`` for a file that is not a photo we can read or is too
    large to open safely; then ``out_dir`` is left untouched. An ``OSError``
    while writing (disk full) is passed on after removing what was written.
    """
    try:
        rendered = _render(src_path, repair=False)
    except _DamagedJpeg:
        rendered = _render(src_path, repair=True)
    display, thumb, facts = rendered
    paths = _publish(out_dir, {DISPLAY_NAME: display, THUMB_NAME: thumb})
    return PhotoResult(thumb_path=paths[THUMB_NAME], display_path=paths[DISPLAY_NAME], **facts)


# -- decoding -----------------------------------------------------------------


@dataclass(frozen=True)
class PhotoHeader:
    """What a photo says about itself without decoding its pixels (cheap, at upload)."""

    width: int | None = None  # after EXIF orientation
    height: int | None = None
    taken_at: dt.datetime | None = None  # naive UTC (camera clock time when no offset)
    taken_at_offset: int | None = None


def read_header(src_path: str) -> PhotoHeader:
    """Size and date from the headers only; an empty header when unreadable.

    The worker's full render comes later and records a clear failure then.
    """
    try:
        with _open(src_path) as image:
            fmt = image.format
            exif = _exif(image)
            width, height = image.size
    except (PhotoError, OSError):
        return PhotoHeader()
    orientation = exif.get(_ORIENTATION, 1) if fmt != "HEIF" else 1
    if orientation in _TRANSPOSE and orientation >= 5:
        width, height = height, width
    date = _date_taken(exif)
    return PhotoHeader(width, height, date["taken_at"], date["taken_at_offset"])


def _render(src_path: str, *, repair: bool):
    """(display JPEG bytes, thumbnail WebP bytes, facts) for one photo."""
    with contextlib.ExitStack() as stack:
        # Opening the file is outside the decode's error handling on purpose: a
        # missing file or an unreachable mount is an outage, not a bad photo.
        if repair:
            source = stack.enter_context(io.BufferedReader(_JpegWithEndMarker(src_path)))
        else:
            source = stack.enter_context(open(src_path, "rb"))
        image = stack.enter_context(_open(source))
        # A phone JPEG carrying more pictures (depth, HDR gain map) opens as
        # "MPO": the same JPEG decoder, its first picture is the photo.
        fmt = "JPEG" if image.format == "MPO" else image.format
        stored_size = image.size
        try:
            if fmt == "JPEG":
                # libjpeg scales by 1/2, 1/4 or 1/8 while decoding, almost for free:
                # take the smallest that still gives nearly the full display size
                # (a 12 MP 4000x3000 photo decodes straight to 2000x1500).
                wanted = _fit(stored_size, DISPLAY_BOX)
                image.draft(None, (max(1, int(wanted[0] * DRAFT_SLACK)), max(1, int(wanted[1] * DRAFT_SLACK))))
            image.load()  # GIF, WebP, APNG: the first frame
        except Image.DecompressionBombError as exc:
            raise PhotoError("decompression_bomb", _bomb_message(exc)) from exc
        except _DECODE_ERRORS as exc:
            if fmt == "JPEG" and not repair:
                raise _DamagedJpeg() from exc
            raise PhotoError("unreadable", f"The photo's pixels could not be decoded ({exc}).") from exc
        # Read after decoding: a PNG may keep its EXIF after the pixels.
        exif = _exif(image)
        # pillow-heif has already turned a HEIC upright (and reset the tag);
        # every other format, AVIF included, leaves that to us.
        orientation = exif.get(_ORIENTATION, 1) if fmt != "HEIF" else 1
        orientation = orientation if orientation in _TRANSPOSE else 1
        width, height = stored_size
        if orientation >= 5:
            width, height = height, width
        icc = image.info.get("icc_profile")
        picture = _shrink_and_colour(image, _fit(image.size, DISPLAY_BOX), orientation, icc)

    display = _encode(picture, "JPEG", quality=DISPLAY_QUALITY, progressive=True, optimize=True)
    small = picture.copy()
    small.thumbnail((THUMB_BOX, THUMB_BOX), _LANCZOS)
    thumb = _encode(small, "WEBP", quality=THUMB_QUALITY, method=4)
    facts = {
        "placeholder": _placeholder.encode(small),
        "width": width,
        "height": height,
        **_date_taken(exif),
        "camera_make": _text(exif.get(_MAKE)),
        "camera_model": _text(exif.get(_MODEL)),
        **_gps(exif),
        "damaged": repair,
        "live_id": apple.photo_content_id(_ifd(exif, _EXIF_IFD).get(_MAKER_NOTE)),
    }
    return display, thumb, facts


def _open(source) -> Image.Image:
    try:
        image = Image.open(source, formats=ACCEPTED_FORMATS)
    except Image.DecompressionBombError as exc:
        raise PhotoError("decompression_bomb", _bomb_message(exc)) from exc
    except (UnidentifiedImageError, *_DECODE_ERRORS) as exc:
        raise PhotoError(
            "unreadable", "The file is not a photo Picup can read (JPEG, PNG, WebP, GIF, HEIC or AVIF)."
        ) from exc
    width, height = image.size
    # Pillow only warns between 1x and 2x its limit; a warning is not a refusal,
    # so the same limit is checked here as an error. (Turning the warning into an
    # exception with warnings.catch_warnings would change a process-wide filter
    # list under other threads' feet.)
    limit = JPEG_MAX_PIXELS if image.format == "JPEG" else MAX_PIXELS
    if width * height > limit:
        image.close()
        raise PhotoError(
            "decompression_bomb",
            f"The photo is {width}x{height} pixels, more than the {limit:,} Picup opens safely.",
        )
    if width < 1 or height < 1:
        image.close()
        raise PhotoError("unreadable", "The photo has no pixels.")
    return image


def _bomb_message(exc: Exception) -> str:
    return f"The photo has too many pixels to open safely. {exc}"


def _fit(size: tuple[int, int], box: int) -> tuple[int, int]:
    """``size`` scaled down to fit a box x box square; never scaled up."""
    width, height = size
    if width <= box and height <= box:
        return width, height
    scale = box / max(width, height)
    return max(1, min(box, round(width * scale))), max(1, min(box, round(height * scale)))


def _shrink_and_colour(image: Image.Image, target, orientation: int, icc: bytes | None) -> Image.Image:
    """An upright, sRGB, 8-bit RGB picture of ``target`` size, transparency on white."""
    picture = _plain_mode(image)
    if picture.size != target:
        # Lanczos pays off for big reductions; for a gentle one (an 8 MP photo to
        # the display size, which no JPEG draft scale reaches) bicubic looks the
        # same at about half the cost.
        gentle = image.size[0] < 3 * target[0]
        picture = picture.resize(target, _BICUBIC if gentle else _LANCZOS, reducing_gap=3.0)
    if orientation != 1:
        picture = picture.transpose(_TRANSPOSE[orientation])
    alpha = picture.getchannel("A") if picture.mode in ("RGBA", "LA") else None
    colour = picture.convert(picture.mode[:-1]) if alpha is not None else picture
    rgb = _to_srgb(colour, icc)
    if alpha is not None and alpha.getextrema()[0] < 255:
        flat = Image.new("RGB", rgb.size, _WHITE)
        flat.paste(rgb, mask=alpha)
        rgb = flat
    if rgb is image:
        rgb = rgb.copy()  # never touch the decoded original's own object
    rgb.info = {}  # no EXIF, comments or foreign profile travel into the renditions
    return rgb


def _plain_mode(image: Image.Image) -> Image.Image:
    """One of L, LA, RGB, RGBA, CMYK, which resizing, ImageCms and flattening all handle."""
    mode = image.mode
    transparent = "transparency" in image.info
    if mode in ("RGB", "RGBA", "L", "LA", "CMYK"):
        if transparent and mode in ("RGB", "L"):
            return image.convert(mode + "A")
        return image
    if mode == "1":
        return image.convert("L")
    if mode in ("P", "PA"):
        return image.convert("RGBA" if transparent or mode == "PA" else "RGB")
    if mode.startswith("I;16") or mode == "I":
        # 16-bit grey (PNG): keep the grey levels, don't clip them at 255
        return image.convert("I").point(lambda value: value * (1 / 256)).convert("L")
    if mode == "F":
        return image.point(lambda value: value * 255).convert("L")
    if mode in ("La", "RGBa"):
        return image.convert(mode.upper())
    return image.convert("RGBA" if "A" in image.getbands() else "RGB")


_PROFILE_MODES = {"RGB": "RGB", "GRAY": "L", "CMYK": "CMYK"}


def _srgb() -> ImageCms.ImageCmsProfile:
    # Made per call (microseconds): lcms profile objects are not promised to be thread-safe.
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


def _is_srgb(profile: ImageCms.ImageCmsProfile) -> bool:
    description = (profile.profile.profile_description or "").lower()
    return description.startswith("srgb")


def _to_srgb(picture: Image.Image, icc: bytes | None) -> Image.Image:
    """``picture`` (L, RGB or CMYK) as sRGB RGB; a broken or mismatched profile is ignored."""
    if icc:
        try:
            profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            space = profile.profile.xcolor_space.strip()
            if space == "RGB" and picture.mode == "RGB" and _is_srgb(profile):
                return picture  # already sRGB: converting costs ~45 ms a photo and changes nothing
            mode = _PROFILE_MODES.get(space)
            if mode is not None and (picture.mode == mode or (mode == "RGB" and picture.mode == "L")):
                source = picture.convert(mode) if picture.mode != mode else picture
                converted = ImageCms.profileToProfile(
                    source, profile, _srgb(), renderingIntent=ImageCms.Intent.PERCEPTUAL, outputMode="RGB"
                )
                if converted is not None:
                    return converted
            else:
                log.info("ignoring an ICC profile that does not fit the picture",
                         extra={"profile_space": space, "mode": picture.mode})
        except (ImageCms.PyCMSError, OSError, ValueError, TypeError) as exc:
            log.info("ignoring an unusable ICC profile", extra={"error": str(exc)})
    return picture if picture.mode == "RGB" else picture.convert("RGB")


def _encode(picture: Image.Image, fmt: str, **options) -> bytes:
    out = io.BytesIO()
    picture.save(out, fmt, **options)
    return out.getvalue()


class _JpegWithEndMarker(io.RawIOBase):
    """A file read as if it ended with a JPEG end-of-image marker.

    libjpeg, given the marker where the data stops, finishes the picture
    (the missing part comes out grey) instead of waiting for more bytes.
    """

    _END = b"\xff\xd9"

    def __init__(self, path: str):
        super().__init__()
        self._file = open(path, "rb")
        self._length = os.fstat(self._file.fileno()).st_size
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._length + len(self._END)}[whence]
        self._position = max(0, base + offset)
        return self._position

    def readinto(self, buffer) -> int:
        view = memoryview(buffer).cast("B")
        if self._position < self._length:
            self._file.seek(self._position)
            count = self._file.readinto(view[: self._length - self._position]) or 0
        else:
            tail = self._END[self._position - self._length :]
            count = min(len(view), len(tail))
            view[:count] = tail[:count]
        self._position += count
        return count

    def close(self) -> None:
        self._file.close()
        super().close()


# -- writing ------------------------------------------------------------------


def _publish(out_dir: str, files: dict[str, bytes]) -> dict[str, str]:
    """Write each file atomically into out_dir; on failure remove what this call wrote."""
    os.makedirs(out_dir, exist_ok=True)
    written: dict[str, str] = {}
    try:
        for name, data in files.items():
            path = os.path.join(out_dir, name)
            _write_atomically(path, data)
            written[name] = path
        _fsync_dir(out_dir)
    except BaseException:
        for path in written.values():
            try:
                os.unlink(path)
            except OSError:
                pass
        raise
    return written


def _write_atomically(path: str, data: bytes) -> None:
    folder, name = os.path.split(path)
    handle, temp = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    except BaseException:
        try:
            os.unlink(temp)
        except OSError:
            pass
        raise


def _fsync_dir(folder: str) -> None:
    try:
        handle = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(handle)
    except OSError:  # some network filesystems refuse; the renditions are caches
        pass
    finally:
        os.close(handle)


# -- metadata -----------------------------------------------------------------


def _exif(image: Image.Image) -> Image.Exif:
    try:
        return image.getexif()
    except _DECODE_ERRORS as exc:
        log.info("ignoring unreadable EXIF", extra={"error": str(exc)})
        return Image.Exif()


def _ifd(exif: Image.Exif, tag: int) -> dict:
    try:
        return exif.get_ifd(tag)
    except _DECODE_ERRORS:
        return {}


def _text(value) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        return None
    value = value.replace("\x00", "").strip()
    return value or None


_DATE = re.compile(r"(\d{4})[:\-/](\d{2})[:\-/](\d{2})[ T](\d{2}):(\d{2}):(\d{2})")
_OFFSET = re.compile(r"([+-])(\d{2}):?(\d{2})")
_OLDEST_YEAR = 1840  # the first photographs


def _parse_date(value) -> dt.datetime | None:
    text = _text(value)
    match = _DATE.match(text) if text else None
    if not match:
        return None
    try:
        return dt.datetime(*(int(part) for part in match.groups()))
    except ValueError:  # "0000:00:00 00:00:00" and friends
        return None


def _parse_offset(value) -> int | None:
    """Minutes east of UTC from "+09:00" / "-05:30"; None when absent or absurd."""
    text = _text(value)
    match = _OFFSET.fullmatch(text) if text else None
    if not match:
        return None
    sign, hours, minutes = match.groups()
    total = int(hours) * 60 + int(minutes)
    if int(minutes) >= 60 or total > 14 * 60:
        return None
    return -total if sign == "-" else total


def _date_taken(exif: Image.Exif) -> dict:
    details = _ifd(exif, _EXIF_IFD)
    candidates = (
        ("DateTimeOriginal", details.get(_DATETIME_ORIGINAL) or exif.get(_DATETIME_ORIGINAL),
         details.get(_OFFSET_TIME_ORIGINAL)),
        ("DateTimeDigitized", details.get(_DATETIME_DIGITIZED) or exif.get(_DATETIME_DIGITIZED),
         details.get(_OFFSET_TIME_DIGITIZED)),
        ("DateTime", exif.get(_DATETIME), details.get(_OFFSET_TIME)),
    )
    latest = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) + dt.timedelta(days=1)
    for field, value, offset_value in candidates:
        moment = _parse_date(value)
        if moment is None:
            continue
        offset = _parse_offset(offset_value)
        if offset is not None:
            try:
                moment -= dt.timedelta(minutes=offset)
            except OverflowError:  # "0001:01:01 00:00:00+09:00"
                continue
        # Without an offset the camera's wall-clock time is all there is; it is
        # kept as it is (the same rule as the header probe).
        if moment.year < _OLDEST_YEAR or moment > latest:
            continue
        return {"taken_at": moment, "taken_at_offset": offset, "taken_at_exif_field": field}
    return {"taken_at": None, "taken_at_offset": None, "taken_at_exif_field": None}


def _degrees(value, ref, limit: float) -> float | None:
    try:
        parts = [float(part) for part in (value if isinstance(value, (tuple, list)) else (value,))]
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    if not 1 <= len(parts) <= 3 or any(math.isnan(p) or math.isinf(p) or p < 0 for p in parts):
        return None
    degrees = sum(part / 60**index for index, part in enumerate(parts))
    if degrees > limit:
        return None
    if (_text(ref) or "").upper()[:1] in ("S", "W"):
        degrees = -degrees
    return round(degrees, 7)


def _gps(exif: Image.Exif) -> dict:
    gps = _ifd(exif, _GPS_IFD)
    latitude = _degrees(gps.get(_GPS_LATITUDE), gps.get(_GPS_LATITUDE_REF), 90)
    longitude = _degrees(gps.get(_GPS_LONGITUDE), gps.get(_GPS_LONGITUDE_REF), 180)
    if latitude is None or longitude is None or (latitude == 0 and longitude == 0):
        # Half a position is no position; 0,0 is what GPS units without a fix write.
        return {"latitude": None, "longitude": None}
    return {"latitude": latitude, "longitude": longitude}
