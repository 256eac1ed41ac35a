"""ThumbHash: a photo's tiny preview, a few dozen bytes, painted before the thumbnail arrives.

Written from Evan Wallace's public description of ThumbHash
(https://evanw.github.io/thumbhash/): the picture, at most 100x100, is turned
into a luminance channel L, two colour channels P (yellow-blue) and Q
(red-green) and optionally alpha A; each channel keeps its lowest DCT
frequencies, quantised to 4 bits and scaled by the channel's largest one.
The bytes are the same as the reference encoder's, so any ThumbHash decoder
(the browser's thumbhash.js included) can paint them.

Pure Python: fast enough for the 100x100 reduction it is made from (a few ms).
"""

from __future__ import annotations

import base64
import math
from operator import mul

from PIL import Image

MAX_SIDE = 100  # the format's own limit for the encoder's input


def encode(image: Image.Image) -> str:
    """The ThumbHash of a picture, as standard base64 (about 30-40 characters)."""
    if image.mode not in ("RGB", "RGBA"):
        image = image.convert("RGBA" if "A" in image.getbands() else "RGB")
    if image.width > MAX_SIDE or image.height > MAX_SIDE:
        image = image.copy()
        image.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.BOX)
    rgba = image.convert("RGBA").tobytes()
    return base64.b64encode(rgba_to_thumbhash(image.width, image.height, rgba)).decode("ascii")


def decode(text: str) -> Image.Image:
    """The small RGBA picture (at most 32x32) a ThumbHash stands for."""
    width, height, rgba = thumbhash_to_rgba(base64.b64decode(text))
    return Image.frombytes("RGBA", (width, height), rgba)


def average_color(text: str) -> tuple[int, int, int, int]:
    """The picture's average colour as 0-255 (r, g, b, a), read from the hash header alone."""
    r, g, b, a = thumbhash_average_rgba(base64.b64decode(text))
    return tuple(round(255 * c) for c in (r, g, b, a))  # type: ignore[return-value]


# -- the format ---------------------------------------------------------------


def _encode_channel(values: list[float], w: int, h: int, nx: int, ny: int):
    """DC, normalised AC factors (0..1) and scale of one channel's low frequencies."""
    rows = [values[y * w : (y + 1) * w] for y in range(h)]
    fy_table = [[math.cos(math.pi / h * cy * (y + 0.5)) for y in range(h)] for cy in range(ny)]
    dc, ac, scale = 0.0, [], 0.0
    projections: dict[int, list[float]] = {}
    for cy in range(ny):
        cx = 0
        while cx * ny < nx * (ny - cy):
            if cx not in projections:  # each row summed against cos(cx) once, reused for every cy
                fx = [math.cos(math.pi / w * cx * (x + 0.5)) for x in range(w)]
                projections[cx] = [sum(map(mul, row, fx)) for row in rows]
            f = sum(map(mul, projections[cx], fy_table[cy])) / (w * h)
            if cx or cy:
                ac.append(f)
                scale = max(scale, abs(f))
            else:
                dc = f
            cx += 1
    if scale:
        ac = [0.5 + 0.5 / scale * f for f in ac]
    return dc, ac, scale


def rgba_to_thumbhash(w: int, h: int, rgba: bytes) -> bytes:
    """Encode w x h RGBA bytes (w, h <= 100) into ThumbHash bytes."""
    if not (0 < w <= MAX_SIDE and 0 < h <= MAX_SIDE):
        raise ValueError(f"ThumbHash input must be at most {MAX_SIDE}x{MAX_SIDE}, not {w}x{h}")
    count = w * h
    # Average colour, weighted by alpha
    avg_r = avg_g = avg_b = avg_a = 0.0
    for i in range(0, 4 * count, 4):
        alpha = rgba[i + 3] / 255
        avg_r += alpha / 255 * rgba[i]
        avg_g += alpha / 255 * rgba[i + 1]
        avg_b += alpha / 255 * rgba[i + 2]
        avg_a += alpha
    if avg_a:
        avg_r /= avg_a
        avg_g /= avg_a
        avg_b /= avg_a
    has_alpha = avg_a < count
    l_limit = 5 if has_alpha else 7  # fewer luminance bits when alpha needs room
    lx = max(1, round(l_limit * w / max(w, h)))
    ly = max(1, round(l_limit * h / max(w, h)))

    # RGBA to LPQA, composited over the average colour
    l_chan, p_chan, q_chan, a_chan = [], [], [], []
    for i in range(0, 4 * count, 4):
        alpha = rgba[i + 3] / 255
        r = avg_r * (1 - alpha) + alpha / 255 * rgba[i]
        g = avg_g * (1 - alpha) + alpha / 255 * rgba[i + 1]
        b = avg_b * (1 - alpha) + alpha / 255 * rgba[i + 2]
        l_chan.append((r + g + b) / 3)
        p_chan.append((r + g) / 2 - b)
        q_chan.append(r - g)
        a_chan.append(alpha)

    l_dc, l_ac, l_scale = _encode_channel(l_chan, w, h, max(3, lx), max(3, ly))
    p_dc, p_ac, p_scale = _encode_channel(p_chan, w, h, 3, 3)
    q_dc, q_ac, q_scale = _encode_channel(q_chan, w, h, 3, 3)
    a_dc, a_ac, a_scale = _encode_channel(a_chan, w, h, 5, 5) if has_alpha else (1.0, [], 0.0)

    is_landscape = w > h
    header24 = (
        round(63 * l_dc)
        | round(31.5 + 31.5 * p_dc) << 6
        | round(31.5 + 31.5 * q_dc) << 12
        | round(31 * l_scale) << 18
        | int(has_alpha) << 23
    )
    header16 = (
        (ly if is_landscape else lx)
        | round(63 * p_scale) << 3
        | round(63 * q_scale) << 9
        | int(is_landscape) << 15
    )
    out = bytearray([header24 & 255, (header24 >> 8) & 255, header24 >> 16, header16 & 255, header16 >> 8])
    if has_alpha:
        out.append(round(15 * a_dc) | round(15 * a_scale) << 4)
    nibbles = [round(15 * f) for channel in (l_ac, p_ac, q_ac, a_ac) for f in channel]
    for index in range(0, len(nibbles), 2):
        low = nibbles[index]
        high = nibbles[index + 1] if index + 1 < len(nibbles) else 0
        out.append(low | high << 4)
    return bytes(out)


def _header(hash_bytes: bytes):
    if len(hash_bytes) < 5:
        raise ValueError("a ThumbHash has at least 5 bytes")
    header24 = hash_bytes[0] | hash_bytes[1] << 8 | hash_bytes[2] << 16
    header16 = hash_bytes[3] | hash_bytes[4] << 8
    return header24, header16


def _lpq_to_rgb(l: float, p: float, q: float) -> tuple[float, float, float]:
    b = l - 2 / 3 * p
    r = (3 * l - b + q) / 2
    return r, r - q, b


def thumbhash_average_rgba(hash_bytes: bytes) -> tuple[float, float, float, float]:
    """Average colour (r, g, b, a), each 0..1."""
    header24, _ = _header(hash_bytes)
    l = (header24 & 63) / 63
    p = ((header24 >> 6) & 63) / 31.5 - 1
    q = ((header24 >> 12) & 63) / 31.5 - 1
    has_alpha = header24 >> 23
    a = (hash_bytes[5] & 15) / 15 if has_alpha else 1.0
    r, g, b = _lpq_to_rgb(l, p, q)
    return tuple(max(0.0, min(1.0, c)) for c in (r, g, b)) + (a,)  # type: ignore[return-value]


def thumbhash_aspect_ratio(hash_bytes: bytes) -> float:
    """Approximate width / height of the original picture."""
    _, header16 = _header(hash_bytes)
    has_alpha = hash_bytes[2] & 0x80
    is_landscape = hash_bytes[4] & 0x80
    lx = (5 if has_alpha else 7) if is_landscape else header16 & 7
    ly = header16 & 7 if is_landscape else (5 if has_alpha else 7)
    return lx / ly


def thumbhash_to_rgba(hash_bytes: bytes) -> tuple[int, int, bytes]:
    """Decode ThumbHash bytes into (width, height, RGBA bytes), at most 32x32."""
    header24, header16 = _header(hash_bytes)
    l_dc = (header24 & 63) / 63
    p_dc = ((header24 >> 6) & 63) / 31.5 - 1
    q_dc = ((header24 >> 12) & 63) / 31.5 - 1
    l_scale = ((header24 >> 18) & 31) / 31
    has_alpha = bool(header24 >> 23)
    p_scale = ((header16 >> 3) & 63) / 63
    q_scale = ((header16 >> 9) & 63) / 63
    is_landscape = bool(header16 >> 15)
    lx = max(3, (5 if has_alpha else 7) if is_landscape else header16 & 7)
    ly = max(3, header16 & 7 if is_landscape else (5 if has_alpha else 7))
    a_dc = (hash_bytes[5] & 15) / 15 if has_alpha else 1.0
    a_scale = (hash_bytes[5] >> 4) / 15 if has_alpha else 0.0
    start = 6 if has_alpha else 5
    position = 0

    def channel(nx: int, ny: int, scale: float) -> list[float]:
        nonlocal position
        factors = []
        for cy in range(ny):
            cx = 0 if cy else 1
            while cx * ny < nx * (ny - cy):
                byte_index = start + (position >> 1)
                byte = hash_bytes[byte_index] if byte_index < len(hash_bytes) else 0
                nibble = (byte >> ((position & 1) << 2)) & 15
                factors.append((nibble / 7.5 - 1) * scale)
                position += 1
                cx += 1
        return factors

    l_ac = channel(lx, ly, l_scale)
    p_ac = channel(3, 3, p_scale * 1.25)
    q_ac = channel(3, 3, q_scale * 1.25)
    a_ac = channel(5, 5, a_scale) if has_alpha else []

    ratio = thumbhash_aspect_ratio(hash_bytes)
    w = round(32 if ratio > 1 else 32 * ratio)
    h = round(32 / ratio if ratio > 1 else 32)
    n = max(lx, 5 if has_alpha else 3)
    m = max(ly, 5 if has_alpha else 3)
    fx_table = [[math.cos(math.pi / w * (x + 0.5) * cx) for cx in range(n)] for x in range(w)]
    fy_table = [[math.cos(math.pi / h * (y + 0.5) * cy) for cy in range(m)] for y in range(h)]
    out = bytearray()
    for y in range(h):
        fy = fy_table[y]
        for x in range(w):
            fx = fx_table[x]
            l, p, q, a = l_dc, p_dc, q_dc, a_dc
            j = 0
            for cy in range(ly):
                cx = 0 if cy else 1
                fy2 = fy[cy] * 2
                while cx * ly < lx * (ly - cy):
                    l += l_ac[j] * fx[cx] * fy2
                    cx += 1
                    j += 1
            j = 0
            for cy in range(3):
                cx = 0 if cy else 1
                fy2 = fy[cy] * 2
                while cx < 3 - cy:
                    f = fx[cx] * fy2
                    p += p_ac[j] * f
                    q += q_ac[j] * f
                    cx += 1
                    j += 1
            if has_alpha:
                j = 0
                for cy in range(5):
                    cx = 0 if cy else 1
                    fy2 = fy[cy] * 2
                    while cx < 5 - cy:
                        a += a_ac[j] * fx[cx] * fy2
                        cx += 1
                        j += 1
            r, g, b = _lpq_to_rgb(l, p, q)
            out += bytes(max(0, min(255, round(255 * c))) for c in (r, g, b, a))
    return w, h, bytes(out)
