"""The photo half of the media pipeline, checked the way a family would see it.

Every input is a real file encoded here by Pillow (pillow-heif for HEIC,
Pillow's own libavif for AVIF); every check opens the renditions that were
written and looks at their pixels, sizes and metadata.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import pickle
import struct
import types
import warnings
import zlib
from fractions import Fraction

import pytest
from PIL import Image, ImageCms, ImageDraw, ImageFile

from picup.media import placeholder
from picup.media.photo import (
    AVIF_SUPPORTED,
    HEIF_SUPPORTED,
    DISPLAY_NAME,
    THUMB_NAME,
    PhotoError,
    PhotoResult,
    render_photo,
)

RED, GREEN, BLUE, WHITE = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)

FORMATS = [
    "JPEG",
    "PNG",
    "WEBP",
    "GIF",
    "HEIF",
    "AVIF",
]


# ----------------------------------------------------------------- helpers
def write(tmp_path, name: str, image: Image.Image, fmt: str | None = None, **options) -> str:
    path = tmp_path / name
    image.save(path, fmt, **options)
    return str(path)


def write_bytes(tmp_path, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def opened(path: str) -> Image.Image:
    with Image.open(path) as image:
        image.load()
        return image


def renditions(result: PhotoResult) -> list[Image.Image]:
    return [opened(result.display_path), opened(result.thumb_path)]


def close_to(pixel, expected, tolerance=40) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(pixel[:3], expected))


def at(image: Image.Image, fx: float, fy: float):
    """The pixel at a fraction of the width and height."""
    x = min(image.width - 1, int(image.width * fx))
    y = min(image.height - 1, int(image.height * fy))
    return image.getpixel((x, y))


def exif_with(**fields) -> Image.Exif:
    """EXIF from readable names: ifd0 tags, ``exif_ifd`` and ``gps`` dicts of tag -> value."""
    exif = Image.Exif()
    for tag, value in fields.get("ifd0", {}).items():
        exif[tag] = value
    for tag, value in fields.get("exif_ifd", {}).items():
        exif.get_ifd(0x8769)[tag] = value
    for tag, value in fields.get("gps", {}).items():
        exif.get_ifd(0x8825)[tag] = value
    return exif


def jpeg_with_exif(tmp_path, name="photo.jpg", color=RED, size=(64, 48), **fields) -> str:
    exif = exif_with(**fields).tobytes()
    return write(tmp_path, name, Image.new("RGB", size, color), "JPEG", quality=90, exif=exif)


def upright_scene(size=(120, 80)) -> Image.Image:
    """White, a red band across the top and a blue band down the left: shows which way is up."""
    scene = Image.new("RGB", size, WHITE)
    draw = ImageDraw.Draw(scene)
    band = size[1] // 4
    draw.rectangle((0, 0, size[0] - 1, band - 1), fill=RED)
    draw.rectangle((0, band, band - 1, size[1] - 1), fill=BLUE)
    return scene


# How a camera stores the upright scene for each EXIF orientation value
# (EXIF 2.32, tag 0x0112): the pixels a correct viewer must turn back.
STORED_AS = {
    1: None,
    2: Image.Transpose.FLIP_LEFT_RIGHT,  # mirrored
    3: Image.Transpose.ROTATE_180,  # upside down
    4: Image.Transpose.FLIP_TOP_BOTTOM,  # mirrored upside down
    5: Image.Transpose.TRANSPOSE,  # mirrored along the main diagonal
    6: Image.Transpose.ROTATE_90,  # phone turned clockwise: picture stored turned left
    7: Image.Transpose.TRANSVERSE,  # mirrored along the other diagonal
    8: Image.Transpose.ROTATE_270,  # phone turned counter-clockwise
}


def stored_with_orientation(orientation: int, size=(120, 80)) -> tuple[Image.Image, Image.Exif]:
    scene = upright_scene(size)
    method = STORED_AS[orientation]
    exif = Image.Exif()
    exif[0x0112] = orientation
    return (scene.transpose(method) if method is not None else scene), exif


def assert_upright(image: Image.Image) -> None:
    assert close_to(at(image, 0.5, 0.05), RED), "the red band belongs at the top"
    assert close_to(at(image, 0.05, 0.6), BLUE), "the blue band belongs on the left"
    assert close_to(at(image, 0.95, 0.6), WHITE), "the right side is white"
    assert close_to(at(image, 0.5, 0.95), WHITE), "the bottom is white"


def icc_rgb_profile(red_xyz, green_xyz, blue_xyz, gamma=2.2, name="test RGB") -> bytes:
    """A minimal ICC v2 matrix/TRC display profile with the given (D50) primaries."""

    def s15(value: float) -> bytes:
        return struct.pack(">i", round(value * 65536))

    def xyz(values) -> bytes:
        return b"XYZ \0\0\0\0" + b"".join(s15(v) for v in values)

    ascii_name = name.encode("ascii") + b"\0"
    desc = b"desc\0\0\0\0" + struct.pack(">I", len(ascii_name)) + ascii_name + b"\0" * (4 + 4 + 2 + 1 + 67)
    curve = b"curv\0\0\0\0" + struct.pack(">IH", 1, round(gamma * 256)) + b"\0\0"
    text = b"text\0\0\0\0" + b"no copyright, test data\0"
    tags = [
        (b"desc", desc),
        (b"wtpt", xyz((0.9642, 1.0, 0.8249))),
        (b"rXYZ", xyz(red_xyz)),
        (b"gXYZ", xyz(green_xyz)),
        (b"bXYZ", xyz(blue_xyz)),
        (b"rTRC", curve),
        (b"gTRC", curve),
        (b"bTRC", curve),
        (b"cprt", text),
    ]
    offset = 128 + 4 + 12 * len(tags)
    table, body = b"", b""
    for signature, data in tags:
        data += b"\0" * (-len(data) % 4)
        table += signature + struct.pack(">II", offset + len(body), len(data))
        body += data
    size = offset + len(body)
    header = (
        struct.pack(">I", size) + b"\0\0\0\0" + struct.pack(">I", 0x02100000) + b"mntrRGB XYZ "
        + struct.pack(">6H", 2026, 1, 1, 0, 0, 0) + b"acsp" + b"\0" * 24
        + struct.pack(">I", 0) + s15(0.9642) + s15(1.0) + s15(0.8249) + b"\0" * 48
    )
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + table + body


# sRGB's primaries as an ICC profile states them (adapted to D50)
SRGB_RED, SRGB_GREEN, SRGB_BLUE = (0.4361, 0.2225, 0.0139), (0.3851, 0.7169, 0.0971), (0.1431, 0.0606, 0.7141)


def png_pixel_bomb(path, width: int, height: int) -> None:
    """A valid 1-bit PNG, all black, of huge dimensions but a few hundred KB on disk."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = b"\0" * (1 + (width + 7) // 8)  # filter byte + packed bits
    squeeze = zlib.compressobj(9)
    idat = b"".join(squeeze.compress(row) for _ in range(height)) + squeeze.flush()
    with open(path, "wb") as out:
        out.write(b"\x89PNG\r\n\x1a\n")
        out.write(chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)))
        out.write(chunk(b"IDAT", idat))
        out.write(chunk(b"IEND", b""))


def resident_kb() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.fixture(scope="module")
def twelve_megapixel_jpeg(tmp_path_factory) -> str:
    """A 4000x3000 camera-sized JPEG: red top half, blue bottom half."""
    image = Image.new("RGB", (4000, 3000), RED)
    image.paste(BLUE, (0, 1500, 4000, 3000))
    path = tmp_path_factory.mktemp("big") / "IMG_0001.jpg"
    image.save(path, "JPEG", quality=90)
    return str(path)


# ----------------------------------------------------------------- renditions
def test_a_photo_gets_a_webp_thumbnail_and_a_jpeg_display_size(tmp_path):
    source = write(tmp_path, "photo.jpg", Image.new("RGB", (3000, 2000), GREEN), "JPEG")
    out = tmp_path / "out"

    result = render_photo(source, str(out))

    assert result.thumb_path == str(out / THUMB_NAME)
    assert result.display_path == str(out / DISPLAY_NAME)
    assert sorted(os.listdir(out)) == sorted([THUMB_NAME, DISPLAY_NAME]), "no temp files left behind"
    display, thumb = renditions(result)
    assert (display.format, display.mode, display.size) == ("JPEG", "RGB", (2048, 1365))
    assert (thumb.format, thumb.mode, thumb.size) == ("WEBP", "RGB", (400, 267))
    assert close_to(at(display, 0.5, 0.5), GREEN) and close_to(at(thumb, 0.5, 0.5), GREEN)
    assert (result.width, result.height, result.damaged) == (3000, 2000, False)


def test_a_small_photo_is_never_upscaled(tmp_path):
    source = write(tmp_path, "small.png", Image.new("RGB", (300, 200), GREEN), "PNG")

    display, thumb = renditions(render_photo(source, str(tmp_path / "out")))

    assert display.size == (300, 200)
    assert thumb.size == (300, 200)


def test_a_tall_panorama_fits_both_boxes(tmp_path):
    source = write(tmp_path, "pano.jpg", Image.new("RGB", (600, 5000), GREEN), "JPEG")

    display, thumb = renditions(render_photo(source, str(tmp_path / "out")))

    assert display.height == 2048 and display.width <= 2048
    assert thumb.height == 400 and thumb.width <= 400
    assert abs(display.width / display.height - 600 / 5000) < 0.01


@pytest.mark.parametrize("size", [(1, 1), (3000, 2), (2, 3000)], ids=["one pixel", "a line", "a column"])
def test_odd_shapes_still_render(size, tmp_path):
    source = write(tmp_path, "odd.png", Image.new("RGB", size, GREEN), "PNG")

    result = render_photo(source, str(tmp_path / "out"))

    for rendition, box in zip(renditions(result), (2048, 400)):
        assert max(rendition.size) == min(box, max(size)) and min(rendition.size) >= 1
    assert 0 < len(result.placeholder) < 200


def test_a_12_megapixel_jpeg_is_decoded_at_half_size(twelve_megapixel_jpeg, tmp_path):
    """Draft mode: libjpeg scales by 1/2 while decoding, so 12 MP never sit in memory.

    The display size is therefore 2000x1500 (within the 2048 box), not a
    2048x1536 resize of a full decode.
    """
    result = render_photo(twelve_megapixel_jpeg, str(tmp_path / "out"))

    display, thumb = renditions(result)
    assert display.size == (2000, 1500)
    assert thumb.size == (400, 300)
    assert (result.width, result.height) == (4000, 3000)
    assert close_to(at(display, 0.5, 0.25), RED) and close_to(at(display, 0.5, 0.75), BLUE)


def test_a_phone_jpeg_with_extra_pictures_inside_shows_its_main_picture(tmp_path):
    """Phones add depth maps and HDR gain maps after the photo (MPO); the photo is the first picture."""
    main, extra = Image.new("RGB", (4000, 3000), RED), Image.new("RGB", (400, 300), BLUE)
    source = write(tmp_path, "PXL_0001.jpg", main, "MPO", save_all=True, append_images=[extra])
    with Image.open(source) as check:
        assert (check.format, check.n_frames) == ("MPO", 2)

    result = render_photo(source, str(tmp_path / "out"))

    display, thumb = renditions(result)
    assert display.size == (2000, 1500), "decoded at half size like any JPEG"
    assert close_to(at(display, 0.5, 0.5), RED) and close_to(at(thumb, 0.5, 0.5), RED)


def test_the_display_jpeg_is_progressive_and_carries_no_exif(tmp_path):
    source = jpeg_with_exif(
        tmp_path,
        ifd0={0x010F: "Canon", 0x0110: "EOS R6"},
        exif_ifd={0x9003: "2021:08:01 09:30:00"},
        gps={1: "N", 2: (37.0, 33.0, 59.4), 3: "E", 4: (126.0, 58.0, 40.8)},
    )

    result = render_photo(source, str(tmp_path / "out"))

    display, thumb = renditions(result)
    assert display.info.get("progressive")
    for rendition in (display, thumb):
        assert not rendition.getexif(), "no camera, date or place leaks into what is shared"
        assert "exif" not in rendition.info


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_comes_out_upright(orientation, tmp_path):
    stored, exif = stored_with_orientation(orientation)
    source = write(tmp_path, f"o{orientation}.jpg", stored, "JPEG", quality=95, exif=exif.tobytes())

    result = render_photo(source, str(tmp_path / "out"))

    assert (result.width, result.height) == (120, 80), "size as the photo is seen, not as stored"
    for rendition in renditions(result):
        assert rendition.size == (120, 80)
        assert_upright(rendition)
        assert not rendition.getexif().get(0x0112), "no orientation tag left to turn it again"


def test_a_big_sideways_jpeg_is_shrunk_and_turned_upright(tmp_path):
    stored, exif = stored_with_orientation(6, size=(4000, 3000))
    source = write(tmp_path, "sideways.jpg", stored, "JPEG", quality=90, exif=exif.tobytes())

    result = render_photo(source, str(tmp_path / "out"))

    display, thumb = renditions(result)
    assert (result.width, result.height) == (4000, 3000)
    assert display.size == (2000, 1500) and thumb.size == (400, 300)
    assert_upright(display)
    assert_upright(thumb)


@pytest.mark.parametrize(
    "fmt",
    ["HEIF", "AVIF", "WEBP", "PNG"],
)
def test_a_sideways_photo_in_other_formats_comes_out_upright(fmt, tmp_path):
    stored, exif = stored_with_orientation(6)
    source = write(tmp_path, f"sideways.{fmt.lower()}", stored, fmt, exif=exif.tobytes())

    result = render_photo(source, str(tmp_path / "out"))

    assert (result.width, result.height) == (120, 80)
    for rendition in renditions(result):
        assert_upright(rendition)


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_accepted_format_renders(fmt, tmp_path):
    picture = Image.new("RGB", (160, 120), GREEN)
    picture.paste(RED, (0, 0, 80, 120))
    source = write(tmp_path, f"photo.{fmt.lower()}", picture, fmt)

    result = render_photo(source, str(tmp_path / "out"))

    assert (result.width, result.height) == (160, 120)
    for rendition in renditions(result):
        assert rendition.size == (160, 120)
        assert close_to(at(rendition, 0.25, 0.5), RED) and close_to(at(rendition, 0.75, 0.5), GREEN)


# ----------------------------------------------------------------- colour
def test_an_embedded_colour_profile_is_converted_to_srgb(tmp_path):
    """A camera profile whose first channel is sRGB's green: the pixel (255, 0, 0) is green."""
    swapped = icc_rgb_profile(SRGB_GREEN, SRGB_RED, SRGB_BLUE, name="green-first RGB")
    described = ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(swapped)))
    assert described.strip() == "green-first RGB", "a profile lcms accepts"
    source = write(tmp_path, "wide.jpg", Image.new("RGB", (64, 48), RED), "JPEG", quality=95, icc_profile=swapped)

    result = render_photo(source, str(tmp_path / "out"))

    for rendition in renditions(result):
        assert rendition.mode == "RGB"
        assert close_to(at(rendition, 0.5, 0.5), GREEN), "colours follow the profile, not the raw numbers"
        assert rendition.info.get("icc_profile") in (None, b""), "no foreign profile: plain sRGB"


def test_a_profile_tone_curve_is_honoured(tmp_path):
    """Mid grey under a linear-light profile is half the light: sRGB's lighter grey 188."""
    linear = icc_rgb_profile(SRGB_RED, SRGB_GREEN, SRGB_BLUE, gamma=1.0, name="linear RGB")
    source = write(tmp_path, "linear.png", Image.new("RGB", (64, 48), (128, 128, 128)), "PNG", icc_profile=linear)

    for rendition in renditions(render_photo(source, str(tmp_path / "out"))):
        assert close_to(at(rendition, 0.5, 0.5), (188, 188, 188), 6)


def test_a_profile_that_does_not_fit_the_picture_is_ignored(tmp_path):
    lab = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()
    source = write(tmp_path, "odd.png", Image.new("RGB", (64, 48), RED), "PNG", icc_profile=lab)

    result = render_photo(source, str(tmp_path / "out"))

    for rendition in renditions(result):
        assert rendition.mode == "RGB" and close_to(at(rendition, 0.5, 0.5), RED)
        assert rendition.info.get("icc_profile") in (None, b"")


def _half_transparent(mode: str) -> Image.Image:
    """Left half fully transparent (black underneath), right half opaque blue (grey for LA)."""
    if mode == "LA":
        picture = Image.new("LA", (80, 60), (0, 0))
        picture.paste((90, 255), (40, 0, 80, 60))
        return picture
    if mode == "P":  # palette: index 0 black and see-through, index 1 blue
        picture = Image.new("P", (80, 60), 0)
        picture.putpalette([0, 0, 0, 0, 0, 255])
        picture.paste(1, (40, 0, 80, 60))
        picture.info["transparency"] = 0
        return picture
    picture = Image.new("RGBA", (80, 60), (0, 0, 0, 0))
    picture.paste((0, 0, 255, 255), (40, 0, 80, 60))
    return picture


@pytest.mark.parametrize(
    "mode, fmt",
    [("RGBA", "PNG"), ("LA", "PNG"), ("P", "PNG"), ("P", "GIF"), ("RGBA", "WEBP"),
     ("RGBA", "AVIF")],
)
def test_transparency_is_flattened_on_white(mode, fmt, tmp_path):
    picture = _half_transparent(mode)
    options = {"lossless": True} if fmt == "WEBP" else {}
    source = write(tmp_path, f"clear.{fmt.lower()}", picture, fmt, **options)
    assert opened(source).getpixel((5, 5)) != opened(source).getpixel((70, 5))
    with Image.open(source) as check:
        assert "A" in check.getbands() or "transparency" in check.info, "the file really is see-through"
    opaque = (90, 90, 90) if mode == "LA" else BLUE

    result = render_photo(source, str(tmp_path / "out"))

    for rendition in renditions(result):
        assert rendition.mode == "RGB"
        assert close_to(at(rendition, 0.2, 0.5), WHITE), f"see-through shows white in {rendition.format}"
        assert close_to(at(rendition, 0.8, 0.5), opaque)


def test_a_cmyk_jpeg_looks_right(tmp_path):
    picture = Image.new("CMYK", (80, 60), (0, 255, 255, 0))  # red in ink
    picture.paste((255, 0, 255, 0), (40, 0, 80, 60))  # green in ink
    source = write(tmp_path, "print.jpg", picture, "JPEG", quality=95)
    assert opened(source).mode == "CMYK"

    result = render_photo(source, str(tmp_path / "out"))

    for rendition in renditions(result):
        assert rendition.mode == "RGB"
        assert close_to(at(rendition, 0.2, 0.5), RED) and close_to(at(rendition, 0.8, 0.5), GREEN)


def test_a_16_bit_grey_png_keeps_its_grey_levels(tmp_path):
    levels = [0, 16384, 32768, 49152, 65535]
    picture = Image.new("I;16", (50 * len(levels), 40))
    for index, level in enumerate(levels):
        picture.paste(Image.new("I;16", (50, 40), level), (50 * index, 0))
    source = write(tmp_path, "scan.png", picture, "PNG")
    assert opened(source).mode == "I;16"

    result = render_photo(source, str(tmp_path / "out"))

    for rendition in renditions(result):
        for index, level in enumerate(levels):
            grey = level // 257
            assert close_to(at(rendition, (index + 0.5) / len(levels), 0.5), (grey, grey, grey), 10)


@pytest.mark.parametrize("mode", ["1", "L", "P", "LA", "RGBA", "I;16"])
def test_every_pixel_mode_comes_out_as_rgb(mode, tmp_path):
    picture = Image.new("RGB", (60, 40), WHITE)
    picture.paste((0, 0, 0), (0, 0, 30, 40))
    if mode == "I;16":
        converted = picture.convert("I").point(lambda v: v * 257).convert("I;16")
    else:
        converted = picture.convert(mode)
    source = write(tmp_path, "mode.png", converted, "PNG")
    assert opened(source).mode == mode

    for rendition in renditions(render_photo(source, str(tmp_path / "out"))):
        assert rendition.mode == "RGB"
        assert close_to(at(rendition, 0.2, 0.5), (0, 0, 0), 20) and close_to(at(rendition, 0.8, 0.5), WHITE, 20)


def test_an_animated_gif_shows_its_first_frame(tmp_path):
    frames = [Image.new("RGB", (64, 48), color) for color in (RED, GREEN, BLUE)]
    source = str(tmp_path / "party.gif")
    frames[0].save(source, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    with Image.open(source) as check:
        assert check.n_frames == 3

    for rendition in renditions(render_photo(source, str(tmp_path / "out"))):
        assert close_to(at(rendition, 0.5, 0.5), RED)


# ----------------------------------------------------------------- hostile and broken files
@pytest.mark.parametrize(
    "width, height",
    [(10_000, 10_000), (20_000, 20_000)],
    ids=["above the limit, where Pillow only warns", "far above, where Pillow refuses"],
)
def test_a_pixel_bomb_is_refused_before_any_pixel_is_decoded(width, height, tmp_path):
    bomb = tmp_path / "bomb.png"
    png_pixel_bomb(bomb, width, height)
    assert bomb.stat().st_size < 1_000_000
    out = tmp_path / "out"

    # In a forked child, so its peak memory can be read back: decoding even
    # 1 bit per pixel would take width*height bytes (100 MB and 400 MB here).
    before_kb = resident_kb()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        status = 1
        try:
            warnings.simplefilter("ignore")  # the child's own warning filters; Pillow warns in the band
            render_photo(str(bomb), str(out))
        except PhotoError as exc:
            status = 0 if exc.code == "decompression_bomb" and "pixels" in str(exc) else 2
        except BaseException:
            status = 3
        os._exit(status)
    _, status, usage = os.wait4(pid, 0)

    assert os.waitstatus_to_exitcode(status) == 0, "refused with a decompression_bomb PhotoError"
    assert usage.ru_maxrss - before_kb < 50_000, "refused from the header, without allocating the pixels"
    assert not out.exists() or not os.listdir(out)


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_a_pixel_bomb_error_says_what_happened(tmp_path):
    bomb = tmp_path / "bomb.png"
    png_pixel_bomb(bomb, 10_000, 10_000)

    with pytest.raises(PhotoError) as caught:
        render_photo(str(bomb), str(tmp_path / "out"))

    assert caught.value.code == "decompression_bomb"
    assert "10000x10000" in str(caught.value) and str(caught.value).endswith(".")


@pytest.mark.parametrize(
    "name, content",
    [
        ("empty.jpg", lambda: b""),
        ("notes.jpg", lambda: b"Shopping list: milk, eggs, kimchi\n" * 20),
        ("scan.jpg", lambda: _encoded(Image.new("RGB", (32, 32), RED), "TIFF")),
        ("paint.jpg", lambda: _encoded(Image.new("RGB", (32, 32), RED), "BMP")),
        ("cut-in-header.jpg", lambda: _encoded(Image.new("RGB", (64, 48), RED), "JPEG")[:100]),
    ],
    ids=["zero bytes", "text named .jpg", "TIFF (not accepted)", "BMP (not accepted)", "JPEG cut in its header"],
)
def test_a_file_that_is_not_a_photo_we_accept_is_unreadable(name, content, tmp_path):
    source = write_bytes(tmp_path, name, content())
    out = tmp_path / "out"

    with pytest.raises(PhotoError) as caught:
        render_photo(source, str(out))

    assert caught.value.code == "unreadable"
    assert str(caught.value).endswith("."), "a plain sentence for the log"
    assert not out.exists() or not os.listdir(out), "nothing half-done is left behind"


def _encoded(image: Image.Image, fmt: str, **options) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


@pytest.mark.parametrize("progressive", [False, True], ids=["baseline", "progressive"])
def test_a_truncated_jpeg_still_gets_renditions_marked_damaged(progressive, tmp_path):
    picture = Image.effect_noise((640, 480), 30).convert("RGB")
    picture.paste(RED, (0, 0, 640, 120))  # the top quarter survives the cut
    whole = _encoded(picture, "JPEG", quality=90, progressive=progressive)
    source = write_bytes(tmp_path, "cut.jpg", whole[: len(whole) // 2])

    result = render_photo(source, str(tmp_path / "out"))

    assert result.damaged is True
    assert (result.width, result.height) == (640, 480)
    for rendition in renditions(result):
        assert rendition.size in ((640, 480), (400, 300))
        assert close_to(at(rendition, 0.5, 0.05), RED, 60), "what was received is shown"


def test_lenient_decoding_of_a_damaged_photo_stays_inside_that_call(tmp_path, monkeypatch):
    whole = _encoded(Image.effect_noise((320, 240), 30).convert("RGB"), "JPEG")
    source = write_bytes(tmp_path, "cut.jpg", whole[: len(whole) // 2])
    switched = []

    class Watched(types.ModuleType):
        def __setattr__(self, name, value):
            if name == "LOAD_TRUNCATED_IMAGES":
                switched.append(value)
            super().__setattr__(name, value)

    monkeypatch.setattr(ImageFile, "__class__", Watched)

    assert render_photo(source, str(tmp_path / "out")).damaged

    assert switched == [], "Pillow's process-wide switch was not flipped, not even for a moment"
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False
    with Image.open(source) as image, pytest.raises(OSError):
        image.load()  # every other decoder in the process stays strict


def test_when_writing_fails_half_way_nothing_is_left(tmp_path):
    source = write(tmp_path, "photo.jpg", Image.new("RGB", (64, 48), RED), "JPEG")
    out = tmp_path / "out"
    (out / THUMB_NAME).mkdir(parents=True)  # the thumbnail cannot land: its name is taken by a folder

    with pytest.raises(OSError):
        render_photo(source, str(out))

    assert os.listdir(out) == [THUMB_NAME], "the display size written first was taken back, no temp files"


def test_photo_errors_survive_the_trip_back_from_a_worker_process():
    error = pickle.loads(pickle.dumps(PhotoError("unreadable", "The file is not a photo.")))

    assert (error.code, str(error)) == ("unreadable", "The file is not a photo.")


# ----------------------------------------------------------------- what the photo says
@pytest.mark.parametrize(
    "offset, expected_utc, minutes",
    [
        ("+09:00", dt.datetime(2019, 7, 14, 6, 30), 540),
        ("-05:30", dt.datetime(2019, 7, 14, 21, 0), -330),
        (None, dt.datetime(2019, 7, 14, 15, 30), None),
    ],
    ids=["Seoul", "half-hour west", "no offset: camera's clock as is"],
)
def test_the_date_taken_comes_from_date_time_original_in_utc(offset, expected_utc, minutes, tmp_path):
    fields = {0x9003: "2019:07:14 15:30:00"}
    if offset:
        fields[0x9011] = offset
    source = jpeg_with_exif(tmp_path, exif_ifd=fields)

    result = render_photo(source, str(tmp_path / "out"))

    assert result.taken_at == expected_utc and result.taken_at.tzinfo is None
    assert result.taken_at_offset == minutes
    assert result.taken_at_exif_field == "DateTimeOriginal"


@pytest.mark.parametrize(
    "ifd0, exif_ifd, field, expected_utc, minutes",
    [
        ({}, {0x9004: "2020:01:02 03:04:05", 0x9012: "+01:00"},
         "DateTimeDigitized", dt.datetime(2020, 1, 2, 2, 4, 5), 60),
        ({0x0132: "2018:12:24 20:00:00"}, {0x9010: "-08:00"}, "DateTime", dt.datetime(2018, 12, 25, 4, 0), -480),
        ({0x0132: "2018:12:24 20:00:00"}, {0x9003: "1800:01:01 00:00:00"},
         "DateTime", dt.datetime(2018, 12, 24, 20, 0), None),
    ],
    ids=["digitized with its offset", "file date with its offset", "absurd original falls back"],
)
def test_the_date_falls_back_to_digitized_then_file_date(ifd0, exif_ifd, field, expected_utc, minutes, tmp_path):
    source = jpeg_with_exif(tmp_path, ifd0=ifd0, exif_ifd=exif_ifd)

    result = render_photo(source, str(tmp_path / "out"))

    assert (result.taken_at, result.taken_at_offset, result.taken_at_exif_field) == (expected_utc, minutes, field)


@pytest.mark.parametrize(
    "value",
    [
        "1800:01:01 00:00:00",
        "0001:01:01 00:00:00",
        "0000:00:00 00:00:00",
        "    :  :     :  :  ",
        "yesterday",
        (dt.datetime.now() + dt.timedelta(days=3)).strftime("%Y:%m:%d %H:%M:%S"),
    ],
    ids=["before photography", "year one", "zeros", "blanks", "words", "next week"],
)
def test_an_absurd_date_is_no_date(value, tmp_path):
    source = jpeg_with_exif(tmp_path, exif_ifd={0x9003: value, 0x9011: "+09:00"})

    result = render_photo(source, str(tmp_path / "out"))

    assert (result.taken_at, result.taken_at_offset, result.taken_at_exif_field) == (None, None, None)


def test_the_camera_make_and_model_are_clean_text(tmp_path):
    source = jpeg_with_exif(tmp_path, ifd0={0x010F: "Canon\x00   ", 0x0110: "  Canon EOS R6\x00\x00"})

    result = render_photo(source, str(tmp_path / "out"))

    assert (result.camera_make, result.camera_model) == ("Canon", "Canon EOS R6")


@pytest.mark.parametrize(
    "gps, latitude, longitude",
    [
        ({1: "N", 2: (Fraction(37), Fraction(33), Fraction(5940, 100)), 3: "E", 4: (126.0, 58.0, 40.8)},
         37.5665, 126.978),
        ({1: "S", 2: (22.0, 54.0, 24.48), 3: "W", 4: (43.0, 10.0, 22.44)}, -22.9068, -43.1729),
        ({1: "N", 2: (51.0, 28.6194, 0.0), 3: "W", 4: (0.0, 0.0, 5.76)}, 51.47699, -0.0016),
    ],
    ids=["Seoul (N, E)", "Rio (S, W)", "Greenwich, minutes with decimals"],
)
def test_gps_position_is_read_in_signed_decimal_degrees(gps, latitude, longitude, tmp_path):
    source = jpeg_with_exif(tmp_path, gps=gps)

    result = render_photo(source, str(tmp_path / "out"))

    assert result.latitude == pytest.approx(latitude, abs=1e-4)
    assert result.longitude == pytest.approx(longitude, abs=1e-4)


def test_a_photo_without_exif_has_no_facts(tmp_path):
    source = write(tmp_path, "plain.png", Image.new("RGB", (40, 30), BLUE), "PNG")

    result = render_photo(source, str(tmp_path / "out"))

    assert (result.taken_at, result.taken_at_offset, result.taken_at_exif_field) == (None, None, None)
    assert (result.camera_make, result.camera_model, result.latitude, result.longitude) == (None,) * 4


def test_an_iphone_heic_gives_its_date_camera_and_place(tmp_path):
    exif = exif_with(
        ifd0={0x010F: "Apple", 0x0110: "iPhone 15 Pro"},
        exif_ifd={0x9003: "2024:03:09 14:05:00", 0x9011: "+09:00"},
        gps={1: "N", 2: (33.0, 27.0, 0.0), 3: "E", 4: (126.0, 33.0, 0.0)},
    )
    source = write(tmp_path, "IMG_4321.HEIC", Image.new("RGB", (96, 64), GREEN), "HEIF", exif=exif.tobytes())

    result = render_photo(source, str(tmp_path / "out"))

    assert (result.camera_make, result.camera_model) == ("Apple", "iPhone 15 Pro")
    assert (result.taken_at, result.taken_at_offset) == (dt.datetime(2024, 3, 9, 5, 5), 540)
    assert (result.latitude, result.longitude) == (pytest.approx(33.45), pytest.approx(126.55))
    assert close_to(at(opened(result.display_path), 0.5, 0.5), GREEN)


# ----------------------------------------------------------------- placeholder
def test_the_placeholder_is_a_short_text(tmp_path):
    source = write(tmp_path, "noise.jpg", Image.effect_noise((800, 600), 60).convert("RGB"), "JPEG")

    result = render_photo(source, str(tmp_path / "out"))

    assert isinstance(result.placeholder, str) and 0 < len(result.placeholder) < 200
    assert result.placeholder.isascii()


def test_different_photos_get_different_placeholders(tmp_path):
    red = write(tmp_path, "red.jpg", Image.new("RGB", (300, 200), RED), "JPEG")
    ramp = Image.linear_gradient("L").resize((200, 300))
    sky = Image.merge("RGB", (ramp.point(lambda v: v // 3), ramp, Image.new("L", ramp.size, 255)))
    blue = write(tmp_path, "sky.jpg", sky, "JPEG")

    first = render_photo(red, str(tmp_path / "a")).placeholder
    second = render_photo(blue, str(tmp_path / "b")).placeholder

    assert first != second


def test_a_red_photo_has_a_red_placeholder(tmp_path):
    source = write(tmp_path, "red.jpg", Image.new("RGB", (400, 300), (200, 30, 40)), "JPEG")

    result = render_photo(source, str(tmp_path / "out"))

    r, g, b, a = placeholder.average_color(result.placeholder)
    assert r > 150 and g < 80 and b < 80 and a == 255
    preview = placeholder.decode(result.placeholder)
    assert preview.width > preview.height, "a landscape photo has a landscape placeholder"
    assert close_to(at(preview, 0.5, 0.5), (200, 30, 40), 30)


def test_the_placeholder_looks_like_the_photo(tmp_path):
    """Half red, half blue: the painted preview is red on the left and blue on the right."""
    picture = Image.new("RGB", (400, 300), BLUE)
    picture.paste(RED, (0, 0, 200, 300))
    source = write(tmp_path, "flag.png", picture, "PNG")

    preview = placeholder.decode(render_photo(source, str(tmp_path / "out")).placeholder)

    left, right = at(preview, 0.1, 0.5), at(preview, 0.9, 0.5)
    assert left[0] > left[2] + 100, f"left is red, got {left}"
    assert right[2] > right[0] + 100, f"right is blue, got {right}"


def test_a_transparent_picture_keeps_its_see_through_part_in_the_placeholder():
    """The encoder itself handles alpha (the renditions are flattened before it is used)."""
    picture = Image.new("RGBA", (60, 40), (0, 0, 0, 0))
    picture.paste((255, 0, 0, 255), (0, 0, 30, 40))

    preview = placeholder.decode(placeholder.encode(picture))

    assert at(preview, 0.1, 0.5)[3] > 200 and at(preview, 0.9, 0.5)[3] < 60
    assert at(preview, 0.1, 0.5)[0] > 150


def test_heic_and_avif_are_supported_by_this_install():
    """Both are hard requirements: iPhones save HEIC, newer Androids AVIF."""
    assert HEIF_SUPPORTED and AVIF_SUPPORTED


def test_a_108_megapixel_phone_photo_is_shown_not_refused(tmp_path):
    """Samsung and Xiaomi phones have 108 MP modes: JPEGs that big decode at reduced scale."""
    source = tmp_path / "108mp.jpg"
    picture = Image.linear_gradient("L").resize((12000, 9000)).convert("RGB")
    picture.save(source, "JPEG", quality=70)
    del picture
    out = tmp_path / "out"
    out.mkdir()
    result = render_photo(str(source), str(out))
    assert (result.width, result.height) == (12000, 9000)
    with Image.open(result.display_path) as display:
        assert max(display.size) <= 2048 and display.size[0] >= 1843


def _patch_jpeg_size(data: bytes, width: int, height: int) -> bytes:
    """Rewrite the SOF0 frame size: a real JPEG header announcing a huge picture."""
    at = data.index(b"\xff\xc0")
    return data[: at + 5] + height.to_bytes(2, "big") + width.to_bytes(2, "big") + data[at + 9:]


def test_a_jpeg_announcing_too_many_pixels_is_refused_before_decoding(tmp_path):
    small = io.BytesIO()
    Image.new("RGB", (64, 64), RED).save(small, "JPEG")
    bomb = tmp_path / "bomb.jpg"
    bomb.write_bytes(_patch_jpeg_size(small.getvalue(), 20000, 20000))
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(PhotoError) as refused, pytest.warns(Image.DecompressionBombWarning):
        render_photo(str(bomb), str(out))
    assert refused.value.code == "decompression_bomb" and "20000x20000" in str(refused.value)
    assert list(out.iterdir()) == []
