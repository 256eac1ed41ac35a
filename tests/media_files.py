"""Real encoded photos and videos, made on the spot by Pillow and PyAV."""

from __future__ import annotations

import io
import math
from fractions import Fraction

from PIL import Image, ImageColor


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
        quiet = {"x265-params": "log-level=error"} if codec == "libx265" else None
        stream = media.add_stream(codec, rate=12, options=quiet)
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
            red, green, blue = ImageColor.getrgb(color)[:3]  # the still's colour, moving
            frame = av.VideoFrame.from_image(Image.new("RGB", size, (red, (green + index * 6) % 256, blue)))
            for packet in stream.encode(frame):
                media.mux(packet)
        for packet in stream.encode(None):
            media.mux(packet)
    return still.getvalue(), motion.getvalue()


def motion_photo(style: str = "pixel", color="teal", size=(400, 300), frames=30, codec="libx265") -> bytes:
    """An Android motion photo: a JPEG with its few seconds of video appended, found as the
    phone says in the photo's XMP. ``style``: "pixel" (Motion Photo 1.0, as Pixels and recent
    Samsungs write it), "microvideo" (Pixel 2-4's MVIMG), "samsung" (older Galaxy phones: no
    XMP, the video after "MotionPhoto_Data" and Samsung's index after it), "galaxy" (a Galaxy
    S10 on: the same trailer, and XMP whose MicroVideoOffset counts Samsung's bytes too, so it
    lands before the video), "samsung-heic" (a Galaxy's HEIC: the video in a top-level "mpvd"
    box), "elements" (Motion Photo 1.0 as ExifTool-based tools rewrite it: XMP elements, not
    attributes) or "edited" (a computer's editor kept the XMP and dropped the video)."""
    import struct

    clip = video("mp4", codec=codec, frames=frames, size=size)
    exif = Image.Exif()
    galaxy = style in ("samsung", "galaxy", "samsung-heic")
    exif[0x010F], exif[0x0110] = ("samsung", "SM-G973F") if galaxy else ("Google", "Pixel 8")
    still = io.BytesIO()
    Image.new("RGB", size, color).save(still, "JPEG", quality=90, exif=exif.tobytes())
    jpeg_bytes = still.getvalue()
    if style == "samsung-heic":  # a Galaxy's HEIC: the video in a top-level "mpvd" box
        import pillow_heif

        pillow_heif.register_heif_opener()
        heic = io.BytesIO()
        Image.new("RGB", size, color).save(heic, "HEIF", exif=exif.tobytes())
        return heic.getvalue() + struct.pack(">I", 8 + len(clip)) + b"mpvd" + clip
    trailer = b""
    if style in ("samsung", "galaxy"):  # Samsung's trailer: records, then their index (SEFH ... SEFT)
        records = [(0x0A30, b"MotionPhoto_Data", clip), (0x0A31, b"MotionPhoto_Version", b"mpv2")]
        blocks = [struct.pack("<HHI", 0, kind, len(name)) + name + data for kind, name, data in records]
        index, start = b"", 0
        for (kind, _name, _data), block in zip(records, blocks):
            index += struct.pack("<HHII", 0, kind, sum(map(len, blocks)) - start, len(block))
            start += len(block)
        index = b"SEFH" + struct.pack("<II", 107, len(records)) + index
        trailer = b"".join(blocks) + index + struct.pack("<I", len(index)) + b"SEFT"
        if style == "samsung":
            return jpeg_bytes + trailer
    if style in ("microvideo", "galaxy"):
        offset = len(trailer) if style == "galaxy" else len(clip)
        description = (f'xmlns:GCamera="http://ns.google.com/photos/1.0/camera/" GCamera:MicroVideo="1" '
                       f'GCamera:MicroVideoVersion="1" GCamera:MicroVideoOffset="{offset}" '
                       f'GCamera:MicroVideoPresentationTimestampUs="1250000">')
        items = ""
    elif style == "elements":
        description = ('xmlns:Camera="http://ns.google.com/photos/1.0/camera/" '
                       'xmlns:Container="http://ns.google.com/photos/1.0/container/" '
                       'xmlns:Item="http://ns.google.com/photos/1.0/container/item/">'
                       '<Camera:MotionPhoto>1</Camera:MotionPhoto>')
        items = ("<Container:Directory><rdf:Seq>"
                 "<rdf:li rdf:parseType='Resource'><Container:Item rdf:parseType='Resource'>"
                 "<Item:Mime>image/jpeg</Item:Mime><Item:Semantic>Primary</Item:Semantic>"
                 "<Item:Length>0</Item:Length></Container:Item></rdf:li>"
                 "<rdf:li rdf:parseType='Resource'><Container:Item rdf:parseType='Resource'>"
                 "<Item:Mime>video/mp4</Item:Mime><Item:Semantic>MotionPhoto</Item:Semantic>"
                 f"<Item:Length>{len(clip)}</Item:Length><Item:Padding>0</Item:Padding>"
                 "</Container:Item></rdf:li></rdf:Seq></Container:Directory>")
    else:
        description = ('xmlns:Camera="http://ns.google.com/photos/1.0/camera/" '
                       'xmlns:Container="http://ns.google.com/photos/1.0/container/" '
                       'xmlns:Item="http://ns.google.com/photos/1.0/container/item/" '
                       'Camera:MotionPhoto="1" Camera:MotionPhotoVersion="1" '
                       'Camera:MotionPhotoPresentationTimestampUs="1250000">')
        items = ('<Container:Directory><rdf:Seq>'
                 '<rdf:li rdf:parseType="Resource"><Container:Item Item:Mime="image/jpeg" '
                 'Item:Semantic="Primary" Item:Length="0" Item:Padding="0"/></rdf:li>'
                 '<rdf:li rdf:parseType="Resource"><Container:Item Item:Mime="video/mp4" '
                 f'Item:Semantic="MotionPhoto" Item:Length="{len(clip)}" Item:Padding="0"/></rdf:li>'
                 '</rdf:Seq></Container:Directory>')
    xmp = ('<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
           f'<rdf:Description rdf:about="" {description}{items}</rdf:Description></rdf:RDF></x:xmpmeta>').encode()
    payload = b"http://ns.adobe.com/xap/1.0/\0" + xmp
    segment = b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
    photo = jpeg_bytes[:2] + segment + jpeg_bytes[2:]
    if style == "galaxy":
        return photo + trailer
    return photo if style == "edited" else photo + clip


def _bt709_to_linear(value: float) -> float:
    return value / 4.5 if value < 0.081 else ((value + 0.099) / 1.099) ** (1 / 0.45)


def _hlg_curve(light: float) -> float:
    a, b, c = 0.17883277, 0.28466892, 0.55991073
    return math.sqrt(3 * light) if light <= 1 / 12 else a * math.log(12 * light - b) + c


def _pq_curve(nits: float) -> float:
    m1, m2, c1, c2, c3 = 0.1593017578125, 78.84375, 0.8359375, 18.8515625, 18.6875
    y = (max(nits, 0.0) / 10000) ** m1
    return ((c1 + c2 * y) / (1 + c3 * y)) ** m2


def hdr_video(colors, transfer: str = "hlg", seconds: float = 2.5, size=(320, 240), rate=12,
              primaries: str = "bt2020", matrix: str = "bt2020nc", signals=()) -> bytes:
    """A phone's HDR video, 10-bit HEVC in BT.2020: ``colors`` (SDR BT.709 8-bit RGB, side by
    side as vertical bands) as they would have been filmed, encoded with the HLG curve (an
    iPhone's default) or PQ (HDR10), in BT.2020 colours (or BT.709, as a few phones do).
    HLG is scene light: the SDR camera curve (BT.709) undone, reference white (SDR 100 %) at
    75 % HLG. PQ is display light: SDR's display curve (BT.1886, 2.4) undone, reference white
    at 203 cd/m² (ITU-R BT.2408). So an SDR rendering should give ``colors`` back.
    ``signals`` adds grey bands given as the HDR signal itself (0-1), for checks that do not
    rest on these same formulas. ``matrix="undef"`` leaves the colour matrix unsaid."""
    import struct

    import av

    to_2020 = ((0.6274, 0.3293, 0.0433), (0.0691, 0.9195, 0.0114), (0.0164, 0.0880, 0.8956))
    codes = []
    for color in colors:
        if transfer == "hlg":
            light = [_bt709_to_linear(v / 255) for v in color]
        else:
            light = [(v / 255) ** 2.4 for v in color]
        wide = [sum(m * v for m, v in zip(row, light)) for row in to_2020] if primaries == "bt2020" else light
        if transfer == "hlg":
            codes.append([_hlg_curve(v * 0.26496256) for v in wide])
        else:
            codes.append([_pq_curve(v * 203) for v in wide])
    codes += [[signal] * 3 for signal in signals]
    band = size[0] // len(codes)
    row = b"".join(struct.pack("<3H", *(round(v * 65535) for v in codes[min(x // band, len(codes) - 1)]))
                   for x in range(size[0]))
    rgb = av.VideoFrame(size[0], size[1], "rgb48le")
    rgb.planes[0].update((row + bytes(rgb.planes[0].line_size - len(row))) * size[1])
    graph = av.filter.Graph()
    nodes = [graph.add_buffer(width=size[0], height=size[1], format="rgb48le", time_base=Fraction(1, rate)),
             graph.add("scale", "out_color_matrix=bt2020:out_range=tv"), graph.add("format", "yuv420p10le"),
             graph.add("buffersink")]
    graph.link_nodes(*nodes).configure()
    trc = "arib-std-b67" if transfer == "hlg" else "smpte2084"
    out = io.BytesIO()
    with av.open(out, mode="w", format="mov") as media:
        stream = media.add_stream("libx265", rate=rate, options={
            "x265-params": f"log-level=error:colorprim={primaries}:transfer={trc}:colormatrix={matrix}:range=limited"})
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p10le"
        for index in range(round(seconds * rate)):
            rgb.pts, rgb.time_base = index, Fraction(1, rate)
            graph.push(rgb)
            frame = graph.pull()
            frame.pts = index
            for packet in stream.encode(frame):
                media.mux(packet)
        for packet in stream.encode(None):
            media.mux(packet)
    return out.getvalue()
