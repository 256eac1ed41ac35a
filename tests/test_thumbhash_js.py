"""The browser's ThumbHash decoder (static/thumbhash.js) paints what the Python one does.

Placeholders are made by picup.media.placeholder from real Pillow pictures, then
decoded in Debian's Chromium (driven by Playwright) on a blank page with only the
script injected: nothing is served or fetched.
"""

from __future__ import annotations

import base64
import io
import random
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

import picup
from picup.media import placeholder

SCRIPT = Path(picup.__file__).parent / "web" / "static" / "thumbhash.js"


def solid_red():
    return Image.new("RGB", (64, 48), "red")


def red_blue_split():
    image = Image.new("RGB", (60, 40), (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, 30, 40))
    return image


def gradient():
    image = Image.new("RGB", (80, 50))
    image.putdata([(round(255 * x / 79), round(255 * y / 49), 128) for y in range(50) for x in range(80)])
    return image


def transparent_portrait():
    """A green disc on a fully transparent background, taller than wide."""
    image = Image.new("RGBA", (40, 60), (0, 0, 0, 0))
    ImageDraw.Draw(image).ellipse((5, 15, 35, 45), fill=(20, 200, 40, 255))
    return image


def alpha_ramp():
    """Orange fading out from left to right."""
    image = Image.new("RGBA", (50, 50))
    image.putdata([(255, 140, 0, round(255 * (1 - x / 49))) for y in range(50) for x in range(50)])
    return image


def large_photo():
    """Bigger than the encoder's 100x100 input, so it is reduced first."""
    image = Image.new("RGB", (400, 300), "skyblue")
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 200, 400, 300), fill="sandybrown")
    draw.ellipse((300, 30, 360, 90), fill="yellow")
    return image


PICTURES = {
    "solid red": solid_red,
    "red/blue split": red_blue_split,
    "gradient": gradient,
    "transparent portrait": transparent_portrait,
    "alpha ramp": alpha_ramp,
    "large photo": large_photo,
}


@pytest.fixture
def page(browser):
    page = browser.new_page()
    page.set_content("<html><body></body></html>")
    page.add_script_tag(path=str(SCRIPT))
    yield page
    page.close()


def js_rgba(page, hash_text):
    return page.evaluate(
        """(text) => {
            const out = window.PicupThumbHash.toRGBA(text);
            return out && {w: out.w, h: out.h, rgba: Array.from(out.rgba),
                           clamped: out.rgba instanceof Uint8ClampedArray};
        }""",
        hash_text,
    )


def assert_same_picture(js, expected: Image.Image, what: str):
    assert js is not None, what
    assert (js["w"], js["h"]) == expected.size, what
    want = expected.tobytes()
    assert len(js["rgba"]) == len(want), what
    worst = max(abs(a - b) for a, b in zip(js["rgba"], want))
    assert worst <= 2, f"{what}: a channel is off by {worst}"


def test_the_script_is_plain_es5_and_stands_alone():
    source = SCRIPT.read_text()
    for modern in ("=>", "class ", "let ", "const ", "import ", "export ", "`", "fetch(", "XMLHttpRequest"):
        assert modern not in source, modern


@pytest.mark.parametrize("name", list(PICTURES))
def test_decodes_like_the_python_decoder(page, name):
    hash_text = placeholder.encode(PICTURES[name]())
    js = js_rgba(page, hash_text)
    assert js["clamped"], "rgba is a Uint8ClampedArray"
    assert_same_picture(js, placeholder.decode(hash_text), name)


@pytest.mark.parametrize("name", list(PICTURES))
def test_average_colour_matches_the_python_one(page, name):
    hash_text = placeholder.encode(PICTURES[name]())
    js = page.evaluate("(t) => window.PicupThumbHash.averageRGBA(t)", hash_text)
    expected = placeholder.average_color(hash_text)
    got = (js["r"], js["g"], js["b"], js["a"])
    assert all(abs(a - b) <= 1 for a, b in zip(got, expected)), (got, expected)


def test_average_of_red_is_red(page):
    js = page.evaluate("(t) => window.PicupThumbHash.averageRGBA(t)", placeholder.encode(solid_red()))
    assert js["r"] > 200 and js["g"] < 60 and js["b"] < 60 and js["a"] == 255, js


def test_transparent_picture_is_see_through_at_the_edges(page):
    js = js_rgba(page, placeholder.encode(transparent_portrait()))
    w, h, rgba = js["w"], js["h"], js["rgba"]
    assert h > w, "portrait stays portrait"
    corner_alpha = rgba[3]
    centre = 4 * ((h // 2) * w + w // 2)
    assert corner_alpha < 80 and rgba[centre + 3] > 180, (corner_alpha, rgba[centre + 3])
    assert rgba[centre + 1] > rgba[centre] and rgba[centre + 1] > rgba[centre + 2], "the disc is green"


def image_pixels_via_canvas(page, url):
    """Load url into an <img>, draw it on a canvas at its own size and read the pixels back."""
    return page.evaluate(
        """(url) => new Promise((resolve, reject) => {
            const img = document.createElement("img");
            img.onload = () => {
                const canvas = document.createElement("canvas");
                canvas.width = img.naturalWidth;
                canvas.height = img.naturalHeight;
                const context = canvas.getContext("2d");
                context.drawImage(img, 0, 0);
                const data = context.getImageData(0, 0, canvas.width, canvas.height).data;
                resolve({w: img.naturalWidth, h: img.naturalHeight, rgba: Array.from(data)});
            };
            img.onerror = () => reject(new Error("the data URL did not load as an image"));
            img.src = url;
            document.body.appendChild(img);
        })""",
        url,
    )


def test_split_picture_drawn_through_an_img_is_red_left_and_blue_right(page):
    hash_text = placeholder.encode(red_blue_split())
    url = page.evaluate("(t) => window.PicupThumbHash.toDataURL(t)", hash_text)
    assert url.startswith("data:image/png;base64,")
    drawn = image_pixels_via_canvas(page, url)
    w, h, rgba = drawn["w"], drawn["h"], drawn["rgba"]
    assert (w, h) == placeholder.decode(hash_text).size
    row = h // 2
    left = rgba[4 * (row * w + w // 4): 4 * (row * w + w // 4) + 4]
    right = rgba[4 * (row * w + 3 * w // 4): 4 * (row * w + 3 * w // 4) + 4]
    assert left[0] > 150 and left[0] > left[2] + 100, f"left is red: {left}"
    assert right[2] > 150 and right[2] > right[0] + 100, f"right is blue: {right}"
    assert left[3] == right[3] == 255


@pytest.mark.parametrize("name", list(PICTURES))
def test_data_url_is_a_real_png_of_the_same_picture(page, name):
    hash_text = placeholder.encode(PICTURES[name]())
    url = page.evaluate("(t) => window.PicupThumbHash.toDataURL(t)", hash_text)
    prefix = "data:image/png;base64,"
    assert url.startswith(prefix)
    png = Image.open(io.BytesIO(base64.b64decode(url[len(prefix):], validate=True)))
    png.load()  # checks the zlib stream and CRCs
    assert png.format == "PNG" and png.mode == "RGBA"
    decoded = {"w": png.width, "h": png.height, "rgba": list(png.tobytes())}
    assert_same_picture(decoded, placeholder.decode(hash_text), name)
    if name == "gradient":  # Chromium reads it too (opaque, so no premultiplying to blur values)
        assert_same_picture(image_pixels_via_canvas(page, url), placeholder.decode(hash_text), name)


BAD_INPUTS = [
    "",
    "   ",
    "!!!!",
    "not base64 at all ###",
    "AAAA",  # valid base64, but 3 bytes are too few for a ThumbHash
    "AAAAAAA=",  # 5 bytes, yet its aspect-ratio field is 0
    base64.b64encode(bytes([0, 0, 0x80, 1, 0])).decode(),  # says it has alpha but the alpha byte is missing
    "YWJj=ZGVm",  # padding in the middle
]


@pytest.mark.parametrize("function", ["toRGBA", "toDataURL", "averageRGBA"])
def test_bad_input_gives_null_not_an_exception(page, function):
    results = page.evaluate(
        """([name, inputs]) => {
            const call = (value) => {
                try { return window.PicupThumbHash[name](value); } catch (e) { return "threw " + e; }
            };
            return inputs.map(call).concat([call(null), call(undefined), call(42), call({})]);
        }""",
        [function, BAD_INPUTS],
    )
    assert results == [None] * (len(BAD_INPUTS) + 4)


def test_any_bytes_never_throw_and_agree_with_python_when_both_decode(page):
    rng = random.Random(20240505)
    samples = [base64.b64encode(bytes(rng.randrange(256) for _ in range(rng.randrange(5, 40)))).decode()
               for _ in range(60)]
    results = page.evaluate(
        """(samples) => samples.map((text) => {
            try {
                const out = window.PicupThumbHash.toRGBA(text);
                return out && {w: out.w, h: out.h, rgba: Array.from(out.rgba)};
            } catch (e) { return "threw " + e; }
        })""",
        samples,
    )
    compared = 0
    for text, js in zip(samples, results):
        assert not isinstance(js, str), js
        try:
            expected = placeholder.decode(text)
        except (ValueError, IndexError, ZeroDivisionError):
            assert js is None, text
            continue
        if expected.width == 0:  # an aspect-ratio field of 0: Python paints nothing, the browser says null
            assert js is None, text
            continue
        assert_same_picture(js, expected, text)
        compared += 1
    assert compared >= 40
