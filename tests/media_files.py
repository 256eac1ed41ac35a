"""Real encoded photos and videos, made on the spot by Pillow and PyAV."""

from __future__ import annotations

import io
from fractions import Fraction

from PIL import Image


def jpeg(color="red", size=(64, 48), taken: str | None = None, offset: str | None = None,
         orientation: int | None = None, quality=90) -> bytes:
    """A JPEG; ``taken`` like ``"2019:07:14 15:30:00"`` goes into EXIF DateTimeOriginal."""
    image = Image.new("RGB", size, color)
    exif = Image.Exif()
    if orientation:
        exif[0x0112] = orientation
    if taken:
        details = exif.get_ifd(0x8769)
        details[0x9003] = taken
        if offset:
            details[0x9011] = offset
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality, exif=exif.tobytes() if (taken or orientation) else b"")
    return out.getvalue()


def image(fmt: str, color="blue", size=(40, 30)) -> bytes:
    """PNG, GIF, WEBP, HEIF or AVIF bytes."""
    if fmt == "HEIF":
        import pillow_heif

        pillow_heif.register_heif_opener()
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, fmt)
    return out.getvalue()


def noisy_jpeg(seed: int, size=(320, 240)) -> bytes:
    """A JPEG whose bytes differ for each seed (for many distinct photos)."""
    image = Image.effect_noise(size, 40 + seed % 50).convert("RGB")
    image.putpixel((seed % size[0], (seed // size[0]) % size[1]), (seed % 256, 0, 0))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=80)
    return out.getvalue()


def video(container: str = "mp4", codec: str = "libx264", frames: int = 12, size=(64, 48)) -> bytes:
    """A short real video encoded by PyAV (mp4, mov, mkv, webm, avi, 3gp)."""
    import av

    out = io.BytesIO()
    fmt = {"mkv": "matroska", "3gp": "3gp"}.get(container, container)
    with av.open(out, mode="w", format=fmt) as media:
        stream = media.add_stream(codec, rate=12)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.time_base = Fraction(1, 12)
        for index in range(frames):
            frame = av.VideoFrame.from_image(Image.new("RGB", size, (index * 20 % 256, 80, 160)))
            for packet in stream.encode(frame):
                media.mux(packet)
        for packet in stream.encode(None):
            media.mux(packet)
    return out.getvalue()
