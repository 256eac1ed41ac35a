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


def apple_maker_note(content_id: str) -> bytes:
    """An iPhone's EXIF maker note as ExifTool documents it, carrying a Live Photo identifier
    (tag 17); tag 1 and tag 8 stand for the other entries a phone writes."""
    import struct

    text = content_id.encode() + b"\x00"
    entries = [(1, 9, 1, struct.pack(">i", 14)), (17, 2, len(text), None), (8, 10, 3, None)]
    start = 14 + 2 + 12 * len(entries) + 4
    data, rows = b"", b""
    for tag, kind, count, inline in entries:
        if inline is not None:
            rows += struct.pack(">HHI", tag, kind, count) + inline
            continue
        value = text if kind == 2 else struct.pack(">6i", 1, 50, -7, 10, -7, 10)
        rows += struct.pack(">HHII", tag, kind, count, start + len(data))
        data += value + b"\x00" * (len(value) % 2)
    return b"Apple iOS\x00" + b"\x00\x01MM" + struct.pack(">H", len(entries)) + rows + b"\x00" * 4 + data


def live_photo(content_id: str, color="orange", size=(400, 300), seconds=2.5,
               still_format="HEIF") -> tuple[bytes, bytes]:
    """An iPhone Live Photo's two files: the still (HEIC, or JPEG for "Most Compatible")
    with Apple's maker note, and its HEVC video with the same identifier in the QuickTime
    metadata, as a phone or a computer copies them off the phone."""
    import av

    if still_format == "HEIF":
        import pillow_heif

        pillow_heif.register_heif_opener()
    exif = Image.Exif()
    exif[0x010F], exif[0x0110] = "Apple", "iPhone 13 mini"
    exif.get_ifd(0x8769)[0x927C] = apple_maker_note(content_id)
    still = io.BytesIO()
    Image.new("RGB", size, color).save(still, still_format, exif=exif.tobytes())
    motion = io.BytesIO()
    with av.open(motion, mode="w", format="mov", options={"movflags": "use_metadata_tags"}) as media:
        media.metadata["com.apple.quicktime.content.identifier"] = content_id
        media.metadata["com.apple.quicktime.make"] = "Apple"
        stream = media.add_stream("libx265", rate=15, options={"x265-params": "log-level=error"})
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        for index in range(round(seconds * 15)):
            frame = av.VideoFrame.from_image(Image.new("RGB", size, (255, index * 6 % 256, 0)))
            for packet in stream.encode(frame):
                media.mux(packet)
        for packet in stream.encode(None):
            media.mux(packet)
    return still.getvalue(), motion.getvalue()
