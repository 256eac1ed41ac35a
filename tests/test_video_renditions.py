"""Videos: probe, poster and web copy, on real files encoded by PyAV right here.

Every call under test runs FFmpeg in a child process, so these tests also show
that damaged, hostile and hanging inputs come back as a ``VideoError`` while
the test process itself carries on.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import os
import resource
import struct
import time
from fractions import Fraction

import av
import pytest
from PIL import Image, ImageStat

from picup.media import video
from picup.media.video import VideoError, VideoInfo, make_poster, make_web_copy, needs_web_copy, probe_video
from tests import media_files

RED, GREEN, BLUE, YELLOW = (230, 20, 20), (20, 200, 20), (20, 20, 230), (230, 230, 20)


# --- making real videos -----------------------------------------------------

def write_video(path, *, fmt=None, codec="libx264", size=(160, 96), fps=12, frames=24,
                color=lambda index: BLUE, band=None, rotate_cw=0, audio=None, audio_rate=44100,
                container_metadata=None, muxer_options=None, codec_options=None, pix_fmt=None):
    """Encode a real video file.

    ``band`` paints a red quarter on one side ("top", "left", ...) of every
    stored frame: with ``rotate_cw`` set the way a phone does it, the band is
    what shows which way is up once the player has turned the picture.
    ``rotate_cw`` is written as the display matrix, like a phone held upright.
    """
    width, height = size
    with av.open(str(path), mode="w", format=fmt, options=muxer_options or {}) as media:
        for key, value in (container_metadata or {}).items():
            media.metadata[key] = value
        stream = media.add_stream(codec, rate=fps, options=codec_options or {})
        stream.width, stream.height = size
        stream.pix_fmt = pix_fmt or ("yuvj420p" if codec == "mjpeg" else "yuv420p")
        if rotate_cw:
            stream.set_display_rotation(-rotate_cw)  # PyAV counts counter-clockwise
        sound = None
        if audio:
            sound = media.add_stream(audio, rate=audio_rate)
            sound.layout = "stereo" if audio == "libopus" else "mono"
        for index in range(frames):
            image = Image.new("RGB", size, color(index))
            box = {"top": (0, 0, width, height // 4), "bottom": (0, height - height // 4, width, height),
                   "left": (0, 0, width // 4, height), "right": (width - width // 4, 0, width, height)}
            if band:
                image.paste(RED, box[band])
            frame = av.VideoFrame.from_image(image)
            frame.pts = index
            frame.time_base = Fraction(1, fps)
            for packet in stream.encode(frame):
                media.mux(packet)
        for packet in stream.encode(None):
            media.mux(packet)
        if sound is not None:
            layout = sound.layout.name
            channels = 2 if layout == "stereo" else 1
            total = int(audio_rate * frames / fps)
            for first in range(0, total, 1024):
                count = min(1024, total - first)
                step = 2 * math.pi * 440 / audio_rate
                tone = (int(6000 * math.sin(step * (first + n))) for n in range(count))
                samples = b"".join(struct.pack("<h", value) * channels for value in tone)
                chunk = av.AudioFrame(format="s16", layout=layout, samples=count)
                chunk.planes[0].update(samples)
                chunk.sample_rate, chunk.pts, chunk.time_base = audio_rate, first, Fraction(1, audio_rate)
                for packet in sound.encode(chunk):
                    media.mux(packet)
            for packet in sound.encode(None):
                media.mux(packet)
    return path


def top_level_boxes(path) -> list[str]:
    """The ISO-BMFF boxes at the top of a file, in order."""
    names = []
    with open(path, "rb") as fh:
        while True:
            header = fh.read(8)
            if len(header) < 8:
                return names
            size, name = struct.unpack(">I4s", header)
            names.append(name.decode("latin-1"))
            if size == 1:
                size = struct.unpack(">Q", fh.read(8))[0] - 8
            elif size == 0:
                return names
            fh.seek(size - 8, os.SEEK_CUR)


def read_back(path) -> dict:
    """What a player finds in a video file: codecs, length, the first picture."""
    with av.open(str(path)) as media:
        stream = media.streams.video[0]
        first = next(media.decode(stream))
        return {
            "video": stream.codec_context.name,
            "audio": [track.codec_context.name for track in media.streams.audio],
            "audio_rates": [track.codec_context.sample_rate for track in media.streams.audio],
            "duration": media.duration / 1_000_000,
            "size": (first.width, first.height),
            "rotation": first.rotation,
            "pix_fmt": first.format.name,
            "picture": first.to_image(),
        }


def strip(image, side: str):
    """Mean colour of the outer eighth of a picture on one side."""
    width, height = image.size
    box = {"top": (0, 0, width, height // 8), "bottom": (0, height - height // 8, width, height),
           "left": (0, 0, width // 8, height), "right": (width - width // 8, 0, width, height)}[side]
    return ImageStat.Stat(image.convert("RGB").crop(box)).mean


def is_red(rgb) -> bool:
    r, g, b = rgb
    return r > 150 and g < 100 and b < 100


def is_blue(rgb) -> bool:
    r, g, b = rgb
    return b > 150 and r < 100 and g < 100


def sha256(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def children() -> set[int]:
    """Processes whose parent is this test process."""
    mine = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == os.getpid():
                mine.add(int(entry))
    return mine


def info(**fields) -> VideoInfo:
    base = dict(duration=1.0, video_codec="h264", audio_codec=None, container="mov,mp4,m4a,3gp,3g2,mj2",
                width=64, height=48, rotation=0, creation_time=None, creation_offset=None)
    return VideoInfo(**{**base, **fields})


# --- probe --------------------------------------------------------------------

def test_h264_mp4_with_sound_is_probed_and_plays_as_is(tmp_path):
    path = write_video(tmp_path / "clip.mp4", frames=24, audio="aac")
    found = probe_video(str(path))
    assert found.duration == pytest.approx(2.0, abs=0.1)
    assert (found.width, found.height) == (160, 96)
    assert found.video_codec == "h264"
    assert found.audio_codec == "aac"
    assert "mp4" in found.container.split(",")
    assert found.rotation == 0
    assert found.creation_time is None and found.creation_offset is None
    assert needs_web_copy(found) is False


def test_silent_h264_mp4_has_no_audio_codec_and_plays_as_is(tmp_path):
    found = probe_video(str(write_video(tmp_path / "silent.mp4", frames=12)))
    assert found.audio_codec is None
    assert found.duration == pytest.approx(1.0, abs=0.1)
    assert needs_web_copy(found) is False


def test_vp9_opus_webm_plays_as_is(tmp_path):
    path = write_video(tmp_path / "clip.webm", codec="libvpx-vp9", audio="libopus", audio_rate=48000,
                       codec_options={"deadline": "realtime", "cpu-used": "8"})
    found = probe_video(str(path))
    assert (found.video_codec, found.audio_codec) == ("vp9", "opus")
    assert "webm" in found.container.split(",")
    assert needs_web_copy(found) is False


@pytest.mark.parametrize("fields, needed", [
    (dict(video_codec="h264", audio_codec="aac"), False),
    (dict(video_codec="h264", audio_codec=None, container="mov,mp4,m4a,3gp,3g2,mj2"), False),
    (dict(video_codec="h264", audio_codec="pcm_s16le"), True),       # camera MOV with raw sound
    (dict(video_codec="hevc", audio_codec="aac"), True),             # iPhone default
    (dict(video_codec="mpeg4", audio_codec=None), True),
    (dict(video_codec="mpeg2video", audio_codec="mp2", container="mpeg"), True),
    (dict(video_codec="mpeg4", audio_codec="mp3", container="avi"), True),
    (dict(video_codec="h264", audio_codec="aac", container="avi"), True),
    (dict(video_codec="h264", audio_codec="aac", container="matroska,webm"), True),
    (dict(video_codec="vp9", audio_codec="opus", container="matroska,webm"), False),
    (dict(video_codec="av1", audio_codec="vorbis", container="matroska,webm"), False),
    (dict(video_codec="av1", audio_codec=None, container="matroska,webm"), False),
    (dict(video_codec="vp9", audio_codec="aac", container="matroska,webm"), True),
    (dict(video_codec="vp9", audio_codec=None), True),               # VP9 in MP4: not for every browser
])
def test_which_videos_need_a_web_copy(fields, needed):
    assert needs_web_copy(info(**fields)) is needed


# --- web copies ----------------------------------------------------------------

# libx265 is in PyAV's wheel, so the iPhone case is a real HEVC .mov.
assert "libx265" in av.codecs_available

OLD_FORMATS = [
    pytest.param(dict(fmt="avi", codec="mpeg4"), "clip.avi", id="mpeg4-avi-silent"),
    pytest.param(dict(fmt="avi", codec="mjpeg", audio="pcm_s16le"), "camera.avi", id="mjpeg-pcm-avi"),
    pytest.param(dict(fmt="mov", codec="libx265", audio="aac", codec_options={"preset": "ultrafast"}),
                 "iphone.mov", id="hevc-aac-mov"),
]


@pytest.mark.parametrize("kind, name", OLD_FORMATS)
def test_videos_browsers_cannot_play_get_an_h264_web_copy(tmp_path, kind, name):
    source = write_video(tmp_path / name, frames=30, **kind)  # 2.5 s
    before = sha256(source)
    found = probe_video(str(source))
    assert needs_web_copy(found) is True
    out = tmp_path / "web.mp4"

    make_web_copy(str(source), str(out), found)

    played = read_back(out)
    assert played["video"] == "h264"
    assert played["audio"] == (["aac"] if kind.get("audio") else [])
    if kind.get("audio"):
        assert played["audio_rates"] == [48000]
    assert played["duration"] == pytest.approx(2.5, abs=0.2)
    assert played["size"] == (160, 96)
    assert played["pix_fmt"] == "yuv420p"
    assert played["rotation"] == 0
    assert top_level_boxes(out)[:2] == ["ftyp", "moov"]  # faststart: plays before it has all arrived
    assert "mdat" in top_level_boxes(out)
    assert needs_web_copy(probe_video(str(out))) is False
    assert sha256(source) == before
    assert sorted(os.listdir(tmp_path)) == sorted([name, "web.mp4"])  # no temporary files left


HDR_COLOURS = [(200, 60, 40), (60, 160, 90), (40, 70, 180), (128, 128, 128), (235, 235, 235), (20, 20, 20)]


@pytest.mark.parametrize("transfer, primaries, matrix", [
    ("hlg", "bt2020", "bt2020nc"), ("pq", "bt2020", "bt2020nc"), ("hlg", "bt709", "bt2020nc"),
    ("hlg", "bt2020", "undef")],
    ids=["iphone-hlg", "android-hdr10-pq", "hlg-in-bt709-colours", "hlg-matrix-unsaid"])
def test_an_hdr_phone_video_keeps_its_colours_in_the_web_copy_and_poster(tmp_path, transfer, primaries, matrix):
    """An iPhone films in HDR (HLG) by default; shown as SDR without mapping, skin goes
    grey-brown and white goes grey. The web copy and the poster are mapped to SDR BT.709."""
    source = tmp_path / "IMG_0042.MOV"
    source.write_bytes(media_files.hdr_video(HDR_COLOURS, transfer, size=(480, 240), primaries=primaries,
                                             matrix=matrix))
    found = probe_video(str(source))
    assert needs_web_copy(found) is True
    make_web_copy(str(source), str(tmp_path / "web.mp4"), found)
    make_poster(str(source), str(tmp_path / "poster.jpg"), found)
    with av.open(str(tmp_path / "web.mp4")) as media:
        context = media.streams.video[0].codec_context
        assert (context.color_primaries, context.color_trc, context.colorspace) == (1, 1, 1), "tagged BT.709"
    pictures = {"web copy": read_back(tmp_path / "web.mp4")["picture"], "poster": Image.open(tmp_path / "poster.jpg")}
    for name, picture in pictures.items():
        for index, wanted in enumerate(HDR_COLOURS):
            shown = picture.convert("RGB").getpixel((40 + index * 80, 120))
            assert all(abs(a - b) <= 6 for a, b in zip(shown, wanted)), (name, wanted, shown)


@pytest.mark.parametrize("transfer", ["hlg", "pq"])
def test_an_hdr_grey_card_comes_out_as_bright_as_in_sdr(tmp_path, transfer):
    """Checked against the standard, not against our own formulas: ITU-R BT.2408 puts an 18 %
    grey card at 38 % signal in both HLG and PQ; an SDR camera (BT.709 curve) gives it 104/255.
    PQ is display light: through the camera curve instead of the display's, it came out 86."""
    source = tmp_path / "grey.mov"
    source.write_bytes(media_files.hdr_video([], transfer, size=(160, 96), signals=[0.38]))
    found = probe_video(str(source))
    make_poster(str(source), str(tmp_path / "poster.jpg"), found)
    make_web_copy(str(source), str(tmp_path / "web.mp4"), found)
    for picture in Image.open(tmp_path / "poster.jpg"), read_back(tmp_path / "web.mp4")["picture"]:
        shown = picture.convert("RGB").getpixel((80, 48))
        assert all(abs(value - 104) <= 6 for value in shown), shown


@pytest.mark.parametrize("size, expected", [
    ((2560, 1440), (1920, 1080)),
    ((1440, 2560), (1080, 1920)),
    ((2400, 1200), (1920, 960)),
    ((102, 74), (102, 74)),      # small stays small
    ((101, 75), (100, 74)),      # odd sizes become even
])
def test_web_copy_is_at_most_1080p_with_even_sides(tmp_path, size, expected):
    if size[0] % 2:  # x264 wants even sides; MPEG-4 in AVI takes odd ones, as old cameras did
        source = write_video(tmp_path / "odd.avi", fmt="avi", codec="mpeg4", size=size, frames=2)
    else:
        source = write_video(tmp_path / "big.mp4", size=size, frames=2, codec_options={"preset": "ultrafast"})
    found = probe_video(str(source))
    assert (found.width, found.height) == size
    out = tmp_path / "web.mp4"
    make_web_copy(str(source), str(out), found)
    played = read_back(out)
    assert played["size"] == expected
    assert played["duration"] == pytest.approx(2 / 12, abs=0.2)


# --- rotation ------------------------------------------------------------------

def tkhd_matrix(path) -> list[int]:
    data = open(path, "rb").read()
    at = data.index(b"tkhd") + 4 + 40  # version/flags, times, track, duration, layer, volume
    return list(struct.unpack(">9i", data[at:at + 36]))


PHONES = [
    pytest.param(dict(codec="libx264"), id="h264"),
    # What an iPhone records by default: 10-bit HEVC (HDR) in a .mov.
    pytest.param(dict(codec="libx265", pix_fmt="yuv420p10le", codec_options={"preset": "ultrafast"}),
                 id="hevc-10bit"),
]


@pytest.mark.parametrize("encoding", PHONES)
def test_phone_video_held_upright_is_shown_upright(tmp_path, encoding):
    # A phone records landscape pictures and says "turn 90 degrees clockwise"
    # in the track header: the scene's top is on the left of the stored picture.
    source = write_video(tmp_path / "phone.mov", fmt="mov", size=(160, 96), band="left", rotate_cw=90,
                         frames=24, audio="aac", **encoding)
    assert tkhd_matrix(source)[:5] == [0, 65536, 0, -65536, 0]  # what iPhones write for portrait

    found = probe_video(str(source))
    assert found.rotation == 90
    assert (found.width, found.height) == (96, 160)

    poster = tmp_path / "poster.jpg"
    make_poster(str(source), str(poster), found)
    with Image.open(poster) as picture:
        assert picture.format == "JPEG"
        assert picture.size == (96, 160)
        assert is_red(strip(picture, "top"))
        assert is_blue(strip(picture, "bottom"))

    out = tmp_path / "web.mp4"
    make_web_copy(str(source), str(out), found)
    played = read_back(out)
    assert played["size"] == (96, 160)
    assert played["rotation"] == 0  # upright in the pixels, nothing left for the player to do
    assert is_red(strip(played["picture"], "top"))
    assert is_blue(strip(played["picture"], "bottom"))
    assert played["audio"] == ["aac"]
    assert played["pix_fmt"] == "yuv420p"
    assert played["duration"] == pytest.approx(2.0, abs=0.2)
    again = probe_video(str(out))
    assert (again.rotation, again.width, again.height) == (0, 96, 160)


@pytest.mark.parametrize("rotate_cw, band, shown", [
    (90, "left", (96, 160)),
    (180, "bottom", (160, 96)),
    (270, "right", (96, 160)),
])
def test_poster_is_upright_for_every_rotation(tmp_path, rotate_cw, band, shown):
    source = write_video(tmp_path / "turned.mp4", band=band, rotate_cw=rotate_cw, frames=12)
    found = probe_video(str(source))
    assert found.rotation == rotate_cw
    assert (found.width, found.height) == shown
    poster = tmp_path / "poster.jpg"
    make_poster(str(source), str(poster), found)
    with Image.open(poster) as picture:
        assert picture.size == shown
        assert is_red(strip(picture, "top"))
        assert not is_red(strip(picture, "bottom"))


# --- posters -------------------------------------------------------------------

def test_poster_is_taken_about_one_second_in(tmp_path):
    by_second = [RED, GREEN, YELLOW]  # a red first second would make a poor poster
    source = write_video(tmp_path / "clip.mp4", frames=36, color=lambda index: by_second[index // 12])
    poster = tmp_path / "poster.jpg"
    make_poster(str(source), str(poster), probe_video(str(source)))
    with Image.open(poster) as picture:
        assert picture.size == (160, 96)
        r, g, b = ImageStat.Stat(picture).mean
        assert g > 150 and r < 100 and b < 100


def test_short_clip_poster_is_its_first_frame(tmp_path):
    source = write_video(tmp_path / "short.mp4", frames=12, color=lambda index: RED if index == 0 else BLUE)
    poster = tmp_path / "poster.jpg"
    make_poster(str(source), str(poster), probe_video(str(source)))
    with Image.open(poster) as picture:
        assert is_red(ImageStat.Stat(picture).mean)
    assert sorted(os.listdir(tmp_path)) == ["poster.jpg", "short.mp4"]


# --- when it was filmed ------------------------------------------------------------

def test_creation_time_comes_from_container_metadata(tmp_path):
    source = write_video(tmp_path / "android.mp4",
                         container_metadata={"creation_time": "2019-07-14T15:30:00.000000Z"})
    found = probe_video(str(source))
    assert found.creation_time == dt.datetime(2019, 7, 14, 15, 30)
    assert found.creation_offset is None


@pytest.mark.parametrize("local, utc, offset", [
    ("2019-07-14T17:30:00+0200", dt.datetime(2019, 7, 14, 15, 30), 120),
    ("2021-12-31T20:15:05-0700", dt.datetime(2022, 1, 1, 3, 15, 5), -420),
    ("2020-03-01T09:00:00+0530", dt.datetime(2020, 3, 1, 3, 30), 330),
])
def test_apple_creation_date_keeps_its_offset(tmp_path, local, utc, offset):
    source = write_video(tmp_path / "iphone.mov", fmt="mov", muxer_options={"movflags": "use_metadata_tags"},
                         container_metadata={"com.apple.quicktime.creationdate": local,
                                             "creation_time": "2000-01-01T00:00:00Z"})
    found = probe_video(str(source))
    assert found.creation_time == utc
    assert found.creation_offset == offset


# --- bad input -------------------------------------------------------------------

def test_truncated_video_is_unreadable_quickly(tmp_path):
    whole = write_video(tmp_path / "whole.mp4", frames=48).read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole[: len(whole) // 2])  # the index (moov) is at the end: gone
    started = time.monotonic()
    with pytest.raises(VideoError) as caught:
        probe_video(str(cut))
    assert caught.value.code == "unreadable"
    assert time.monotonic() - started < 10
    assert probe_video(str(tmp_path / "whole.mp4")).video_codec == "h264"  # the caller carries on


def test_random_bytes_after_a_valid_header_are_unreadable(tmp_path):
    source = write_video(tmp_path / "good.mp4", frames=48, muxer_options={"movflags": "faststart"})
    data = bytearray(source.read_bytes())
    mdat = data.index(b"mdat") + 4
    data[mdat:] = os.urandom(len(data) - mdat)  # header and index intact, every picture is noise
    bad = tmp_path / "noise.mp4"
    bad.write_bytes(bytes(data))
    started = time.monotonic()
    with pytest.raises(VideoError) as caught:
        probe_video(str(bad))
    assert caught.value.code == "unreadable"
    assert time.monotonic() - started < 10
    out = tmp_path / "web.mp4"
    with pytest.raises(VideoError) as caught:
        make_web_copy(str(bad), str(out), info(duration=4.0))
    assert caught.value.code == "unreadable"
    assert sorted(os.listdir(tmp_path)) == ["good.mp4", "noise.mp4"]  # nothing half-written


def test_text_file_is_unreadable(tmp_path):
    text = tmp_path / "notes.mp4"
    text.write_text("Shopping list: rice, kimchi, eggs.\n" * 200)
    with pytest.raises(VideoError) as caught:
        probe_video(str(text))
    assert caught.value.code == "unreadable"
    assert "notes.mp4" in str(caught.value)


def test_playlist_pointing_at_other_files_is_refused(tmp_path):
    # FFmpeg would happily follow an HLS playlist to other files (or URLs).
    write_video(tmp_path / "secret.mp4")
    playlist = tmp_path / "upload.mov"
    playlist.write_text(f"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:2,\nfile:{tmp_path}/secret.mp4\n"
                        "#EXT-X-ENDLIST\n")
    with pytest.raises(VideoError) as caught:
        probe_video(str(playlist))
    assert caught.value.code == "unreadable"


def test_file_with_only_sound_is_unreadable(tmp_path):
    path = tmp_path / "voice.mp4"
    with av.open(str(path), "w") as media:
        sound = media.add_stream("aac", rate=48000)
        chunk = av.AudioFrame(format="fltp", layout="stereo", samples=1024)
        for plane in chunk.planes:
            plane.update(bytes(plane.buffer_size))
        chunk.sample_rate, chunk.pts = 48000, 0
        for packet in sound.encode(chunk):
            media.mux(packet)
        for packet in sound.encode(None):
            media.mux(packet)
    with pytest.raises(VideoError) as caught:
        probe_video(str(path))
    assert caught.value.code == "unreadable"


def test_missing_original_is_a_server_problem_not_a_bad_video(tmp_path):
    with pytest.raises(FileNotFoundError):
        probe_video(str(tmp_path / "gone.mp4"))


# --- hangs and crashes --------------------------------------------------------------

def test_a_hang_becomes_a_timeout(tmp_path):
    # Opening a named pipe that nobody writes to blocks forever: a real hang.
    fifo = tmp_path / "stuck.mp4"
    os.mkfifo(fifo)
    before = children()
    started = time.monotonic()
    with pytest.raises(VideoError) as caught:
        probe_video(str(fifo), timeout=2)
    elapsed = time.monotonic() - started
    assert caught.value.code == "timeout"
    assert 2 <= elapsed < 5
    assert children() == before  # the stuck child was killed and reaped

    out = tmp_path / "web.mp4"
    with pytest.raises(VideoError) as caught:
        make_web_copy(str(fifo), str(out), info(), timeout=1)
    assert caught.value.code == "timeout"
    assert os.listdir(tmp_path) == ["stuck.mp4"]


def test_a_child_killed_by_a_signal_is_reported_as_crashed():
    # ctypes.string_at(0) reads address 0: a real segmentation fault, in the child.
    with pytest.raises(video.IsolatedFailure) as caught:
        video.run_isolated("ctypes:string_at", [0], timeout=20)
    assert caught.value.kind == "crashed"
    assert "SIGSEGV" in str(caught.value)
    with pytest.raises(video.IsolatedFailure) as caught:
        video.run_isolated("os:abort", [], timeout=20)
    assert "SIGABRT" in str(caught.value)
    assert video.run_isolated("os.path:join", ["we", "carry", "on"]) == "we/carry/on"


def test_child_runs_under_the_memory_limit():
    limit = 700 << 20
    assert video.run_isolated("resource:getrlimit", [resource.RLIMIT_AS], memory_limit=limit) == [limit] * 2
    assert video.run_isolated("resource:getrlimit", [resource.RLIMIT_CORE]) == [0, 0]


def test_video_too_big_for_the_memory_limit_is_crashed_not_a_dead_worker(tmp_path, monkeypatch):
    # An 8K picture needs ~50 MiB as YUV and ~100 MiB as RGB; PyAV and Pillow
    # alone take ~135 MiB of address space. 200 MiB cannot hold it.
    source = write_video(tmp_path / "8k.mp4", size=(8192, 4320), frames=1,
                         codec_options={"preset": "ultrafast"})
    found = probe_video(str(source))
    poster = tmp_path / "poster.jpg"
    monkeypatch.setattr(video, "MEMORY_LIMIT", 200 << 20)
    with pytest.raises(VideoError) as caught:
        make_poster(str(source), str(poster), found)
    assert caught.value.code == "crashed"
    assert "memory" in str(caught.value)
    assert os.listdir(tmp_path) == ["8k.mp4"]
    monkeypatch.undo()
    make_poster(str(source), str(poster), found)  # with the normal limit it fits
    with Image.open(poster) as picture:
        assert picture.size == (8192, 4320)
