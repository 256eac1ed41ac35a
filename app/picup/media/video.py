"""Videos: what a video is (probe), a poster frame, and a copy every browser plays.

Why a child process
-------------------
Family videos come from phones, old cameras and whoever else shares with the
family, so their bytes are untrusted (DESIGN.md, principle 6). They are read
by FFmpeg (through PyAV): a very large body of C code. A damaged or hostile
file can make it crash the whole process (a segfault cannot be caught by
``try``), allocate memory without end, or wait forever (a named pipe, a file on
a hung NFS mount). If that happened inside the web server or the worker, one
bad video would take the album down with it.

So every call here that touches a video's bytes runs in a fresh Python child
process (``run_isolated``) with a wall-clock limit that the parent enforces by
killing it, a memory limit (``RLIMIT_AS``) and no core dumps. The caller only
ever sees a result or a ``VideoError`` whose ``code`` says what went wrong:
"unreadable" (not a video we can read), "timeout" or "crashed".

The child is ``python -I`` running this very file, started with
``subprocess`` (a fresh interpreter, like multiprocessing's "spawn"; no copy of
a parent that may have threads goes on running Python). It does not import the
``picup`` package, so it starts in about a tenth of a second with a small
footprint and cannot be broken by the rest of the app. PyAV is imported only
in the child: the web process never loads FFmpeg at all. The child also sets
an alarm of its own, so it cannot outlive a parent that died.

Problems that are about the server rather than the video (the original is
missing, the disk is full, a folder is read-only) are raised as ``OSError``,
and a reader that cannot even start (PyAV missing) as ``RuntimeError``, not
``VideoError``: the caller can retry those later instead of marking the video
as bad.
"""

from __future__ import annotations

import datetime as dt
import errno
import importlib
import json
import math
import os
import secrets
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from fractions import Fraction

# Containers Picup accepts (see sniff.py), as FFmpeg demuxer names. Anything
# else, an HLS playlist or a concat script in particular, is refused, and only
# plain local files may be opened: a video cannot make FFmpeg read other files
# or the network.
ACCEPTED_FORMATS = "mov,mp4,m4a,3gp,3g2,mj2,matroska,webm,avi"

MEMORY_LIMIT = 1 << 30           # probe and poster
WEB_COPY_MEMORY_LIMIT = 2 << 30  # decode (up to 4K HEVC) and encode at once
PROBE_TIMEOUT = 30.0
POSTER_TIMEOUT = 60.0
MAX_PIXELS = 8192 * 8192         # larger frames are refused before decoding
MAX_THREADS = 4                  # codec threads: a home server has 1-4 GB of RAM
WEB_MAX_LONG = 1920
WEB_MAX_SHORT = 1080
POSTER_AT = 1.0                  # seconds; clips shorter than 2 s use the first frame
LIVE_PHOTO_KEY = "com.apple.quicktime.content.identifier"  # see apple.py
CHILD_GRACE = 5                  # the child's own alarm rings this long after the parent's limit

_CHILD_FLAG = "--picup-isolated-child"
_SERVER_ERRNOS = {errno.ENOENT, errno.EACCES, errno.EPERM, errno.ENOSPC, errno.EDQUOT,
                  errno.EROFS, errno.ESTALE}


class VideoError(Exception):
    """A video could not be handled; ``code`` is "unreadable", "timeout" or "crashed"."""

    _DEFAULTS = {
        "unreadable": "The file is not a video Picup can read.",
        "timeout": "Reading the video took too long and was stopped.",
        "crashed": "The video reader crashed while reading the file.",
    }

    def __init__(self, code: str, message: str | None = None):
        super().__init__(message or self._DEFAULTS.get(code, "The video could not be handled."))
        self.code = code


@dataclass(frozen=True)
class VideoInfo:
    duration: float | None          # seconds
    video_codec: str | None         # "h264", "hevc", "vp9", "av1", "mpeg4", ...
    audio_codec: str | None         # "aac", "opus", ...; None when silent
    container: str                  # PyAV format name(s), e.g. "mov,mp4,m4a,3gp,3g2,mj2"
    width: int | None               # as displayed: square pixels, after rotation
    height: int | None
    rotation: int                   # 0, 90, 180, 270: degrees clockwise the player must turn it
    creation_time: dt.datetime | None  # naive UTC
    creation_offset: int | None     # minutes east of UTC, when the metadata had one
    live_id: str | None = None      # an iPhone Live Photo's identifier, shared with its still


# ---------------------------------------------------------------------------
# The child-process helper (reusable for any decoder we do not trust)


class IsolatedFailure(Exception):
    """A call made with ``run_isolated`` gave no result.

    ``kind`` is "timeout", "crashed" (killed by a signal, out of memory, or
    ended without an answer) or "error" (the function raised; ``error_type``,
    ``error_errno`` and ``video_error_code`` describe the exception).
    """

    def __init__(self, kind: str, message: str, *, error_type: str | None = None,
                 error_errno: int | None = None, video_error_code: str | None = None):
        super().__init__(message)
        self.kind = kind
        self.error_type = error_type
        self.error_errno = error_errno
        self.video_error_code = video_error_code


def run_isolated(fn_name: str, args=(), timeout: float | None = 30.0,
                 memory_limit: int | None = MEMORY_LIMIT):
    """Call a function in a fresh child process and return its (JSON) result.

    ``fn_name`` is one of this file's tasks ("probe", "poster", "web_copy"),
    run without importing the ``picup`` package, or "module:function" for
    anything importable. ``args`` and the result must be JSON values. The child
    gets ``memory_limit`` bytes of address space and is killed after
    ``timeout`` seconds. Raises ``IsolatedFailure`` when there is no result.
    """
    request = json.dumps({
        "target": fn_name,
        "args": list(args),
        "sys_path": sys.path,
        "memory_limit": memory_limit,
        "alarm": math.ceil(timeout) + CHILD_GRACE if timeout else 0,
    }).encode()
    # glibc reserves 64 MiB of address space per thread arena; without this a
    # many-threaded decoder would hit RLIMIT_AS long before it used real memory.
    env = dict(os.environ, MALLOC_ARENA_MAX="2")
    command = [sys.executable, "-I", os.path.abspath(__file__), _CHILD_FLAG]
    with tempfile.TemporaryFile() as stderr:
        process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                   stderr=stderr, env=env, close_fds=True,
                                   start_new_session=True)
        try:
            output, _ = process.communicate(request, timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill(process)
            process.communicate()
            raise IsolatedFailure("timeout", f"The child process did not finish within "
                                             f"{timeout:g} seconds and was stopped.") from None
        except BaseException:
            _kill(process)
            process.wait()
            raise
        stderr.seek(0, os.SEEK_END)
        stderr.seek(max(0, stderr.tell() - 2000))
        last_words = stderr.read().decode("utf-8", "replace").strip().splitlines()[-1:]

    if process.returncode < 0:
        try:
            name = signal.Signals(-process.returncode).name
        except ValueError:
            name = f"signal {-process.returncode}"
        hint = " (perhaps the server ran out of memory)" if name == "SIGKILL" else ""
        raise IsolatedFailure("crashed", f"The child process was killed by {name}{hint}.")
    try:
        reply = json.loads(output)
    except ValueError:
        detail = f": {last_words[0]}" if last_words else ""
        raise IsolatedFailure("crashed", f"The child process ended with exit status "
                                         f"{process.returncode} and no answer{detail}.") from None
    if reply.get("ok"):
        return reply.get("value")
    if reply.get("out_of_memory"):
        limit = f" of {memory_limit / (1 << 20):.0f} MiB" if memory_limit else ""
        raise IsolatedFailure("crashed", f"The child process ran out of its memory allowance{limit}.",
                              error_type=reply.get("type"))
    message = reply.get("message") or "The child process failed."
    error_type = reply.get("type") or ""
    if not reply.get("video_error_code") and not error_type.startswith("av."):
        message = f"{error_type.rpartition('.')[2]}: {message}"  # a Python error: say which
    raise IsolatedFailure("error", message,
                          error_type=reply.get("type"), error_errno=reply.get("errno"),
                          video_error_code=reply.get("video_error_code"))


def _kill(process: subprocess.Popen) -> None:
    """Kill the child and anything it started (it leads its own process group)."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except OSError:
        process.kill()


def _child_main() -> None:
    """The child's side of ``run_isolated``: limits first, then the call, then one JSON answer."""
    import resource

    request = json.loads(sys.stdin.buffer.read())
    answer_fd = os.dup(1)
    os.dup2(2, 1)  # whatever the libraries print must not mix with the answer
    limit = request.get("memory_limit")
    if limit:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if request.get("alarm"):
        signal.alarm(int(request["alarm"]))  # ends the child even if the parent is gone
    sys.path[:] = request["sys_path"]
    try:
        value = _resolve(request["target"])(*request["args"])
        answer = json.dumps({"ok": True, "value": value})
    except BaseException as exc:  # everything is reported; the parent decides what it means
        oserror = isinstance(exc, OSError) and isinstance(exc.errno, int) and exc.errno > 0
        answer = json.dumps({
            "ok": False,
            "type": f"{type(exc).__module__}.{type(exc).__qualname__}",
            "message": str(exc) or type(exc).__name__,
            "errno": exc.errno if oserror else None,
            # Under RLIMIT_AS, failing to start a thread (EAGAIN) means memory too.
            "out_of_memory": isinstance(exc, MemoryError)
            or (oserror and exc.errno in (errno.ENOMEM, errno.EAGAIN)),
            "video_error_code": exc.code if type(exc).__name__ == "VideoError" else None,
        })
    data = answer.encode()
    while data:
        data = data[os.write(answer_fd, data):]
    os._exit(0)  # do not wait for codec threads or run finalizers


def _resolve(target: str):
    if ":" in target:
        module, _, name = target.partition(":")
        return getattr(importlib.import_module(module), name)
    return _TASKS[target]


# ---------------------------------------------------------------------------
# The public functions (run in the caller)


def probe_video(path: str, timeout: float = PROBE_TIMEOUT) -> VideoInfo:
    """What the video is: codecs, duration, displayed size, rotation and date.

    The first picture is decoded too: that is where FFmpeg reports the
    rotation, and a video whose pictures cannot be decoded is "unreadable".
    """
    from .apple import clean_id  # here, not at the top: the child runs this file as a script

    found = _isolated("probe", [os.fspath(path)], path, timeout, MEMORY_LIMIT)
    created = found["creation_time"]
    return VideoInfo(
        duration=found["duration"],
        video_codec=found["video_codec"],
        audio_codec=found["audio_codec"],
        container=found["container"],
        width=found["width"],
        height=found["height"],
        rotation=found["rotation"],
        creation_time=dt.datetime.fromisoformat(created) if created else None,
        creation_offset=found["creation_offset"],
        live_id=clean_id(found.get("live_id")),
    )


_MP4_FAMILY = {"mov", "mp4", "m4a", "3gp", "3g2", "mj2"}


def needs_web_copy(info: VideoInfo) -> bool:
    """True unless every browser plays the original as it is.

    That is H.264 with AAC or no sound in an MP4/MOV-family file, or VP9/AV1
    with Opus, Vorbis or no sound in WebM. FFmpeg uses one demuxer for WebM and
    Matroska ("matroska,webm"), so a .mkv holding exactly WebM's codecs counts
    as WebM: that is all WebM is.
    """
    names = set(info.container.split(","))
    if info.video_codec == "h264" and names & _MP4_FAMILY:
        return info.audio_codec not in (None, "aac")
    if info.video_codec in ("vp9", "av1") and "webm" in names:
        return info.audio_codec not in (None, "opus", "vorbis")
    return True


def make_poster(path: str, out_path: str, info: VideoInfo) -> None:
    """Write a JPEG of the frame about 1 s in (the first frame for clips under 2 s).

    The picture is upright (rotation applied), in square pixels, at the full
    decoded size. Written to a temporary file beside ``out_path`` and renamed.
    """
    _write_atomically(out_path, lambda temp: _isolated(
        "poster", [os.fspath(path), temp, info.duration], path, POSTER_TIMEOUT, MEMORY_LIMIT))


def make_web_copy(path: str, out_path: str, info: VideoInfo, timeout: float | None = None) -> None:
    """Write a copy every browser plays: H.264 + AAC in MP4, moov first (faststart).

    At most 1920x1080 (1080x1920 upright portrait), even dimensions, yuv420p,
    x264 "veryfast" at CRF 23; sound becomes 48 kHz stereo AAC, and a silent
    video gets no audio track. Rotation is baked into the pixels: the copy is
    upright and carries no rotation metadata, which old TV browsers ignore.
    Default time limit: max(60 s, 10 x duration). On failure nothing is left
    at ``out_path``; the original is only read.
    """
    if timeout is None:
        timeout = max(60.0, 10.0 * (info.duration or 0.0))
    _write_atomically(out_path, lambda temp: _isolated(
        "web_copy", [os.fspath(path), temp], path, timeout, WEB_COPY_MEMORY_LIMIT))


def _isolated(task: str, args: list, path, timeout: float, memory_limit: int):
    name = os.path.basename(os.fspath(path))
    try:
        return run_isolated(task, args, timeout=timeout, memory_limit=memory_limit)
    except IsolatedFailure as failure:
        if failure.kind == "timeout":
            raise VideoError("timeout", f"Reading the video {name} took longer than "
                                        f"{timeout:g} seconds, so it was stopped.") from None
        if failure.kind == "crashed":
            raise VideoError("crashed", f"The video reader crashed on {name}: {failure}") from None
        if failure.error_type in ("builtins.ImportError", "builtins.ModuleNotFoundError"):
            raise RuntimeError(f"The video reader could not start: {failure}") from None
        if failure.error_errno in _SERVER_ERRNOS and failure.video_error_code is None:
            raise OSError(failure.error_errno, f"Could not work on the video {name}: {failure}") from None
        if failure.video_error_code in ("timeout", "crashed"):
            raise VideoError(failure.video_error_code, str(failure)) from None
        raise VideoError("unreadable", f"Could not read the video {name}: {failure}") from None


def _write_atomically(out_path, write) -> None:
    """Let ``write(temp_path)`` fill a temporary file beside out_path, then rename it into place."""
    out_path = os.fspath(out_path)
    folder = os.path.dirname(os.path.abspath(out_path))
    temp = os.path.join(folder, f".{os.path.basename(out_path)}.{secrets.token_hex(6)}.part")
    try:
        write(temp)
        with open(temp, "rb") as written:
            os.fsync(written.fileno())
        os.replace(temp, out_path)
    except BaseException:
        try:
            os.unlink(temp)
        except FileNotFoundError:
            pass
        raise
    try:
        folder_fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(folder_fd)
    except OSError:
        pass
    finally:
        os.close(folder_fd)


# ---------------------------------------------------------------------------
# What runs in the child. Only the standard library, PyAV and Pillow here.


def _open(path: str):
    import av

    try:
        return av.open(
            "file:" + os.path.abspath(path),  # never read as a URL or another protocol
            container_options={"format_whitelist": ACCEPTED_FORMATS, "protocol_whitelist": "file"},
            metadata_errors="replace",
        )
    except av.error.ArgumentError:  # what FFmpeg says when the whitelist refuses the format
        raise VideoError("unreadable", "The file is not in a video format Picup accepts "
                                       "(MP4, MOV, 3GP, MKV, WebM or AVI).") from None
    except (av.error.InvalidDataError, av.error.EOFError, av.error.PatchWelcomeError,
            av.error.UndefinedError, av.error.UnknownError, av.error.DemuxerNotFoundError,
            UnicodeDecodeError):
        raise VideoError("unreadable", "The file is not a video, or it is damaged.") from None


def _video_stream(container):
    for stream in container.streams.video:
        if stream.disposition & stream.disposition.attached_pic:
            continue  # cover art, not the video
        if stream.codec_context is None:
            continue
        _check_size(stream.codec_context.width, stream.codec_context.height)
        stream.thread_type = "AUTO"
        stream.codec_context.thread_count = min(MAX_THREADS, os.cpu_count() or 1)
        return stream
    raise VideoError("unreadable", "The file has no video picture that can be decoded.")


def _audio_stream(container):
    for stream in container.streams.audio:
        if stream.codec_context is not None:
            return stream
    return None


def _check_size(width, height) -> None:
    if width and height and width * height > MAX_PIXELS:
        raise VideoError("unreadable", f"The video's pictures are too large ({width}x{height}).")


def _damage_errors() -> tuple:
    """What decoders raise for a damaged packet: skipped, as players do, up to a point."""
    import av

    return (av.error.InvalidDataError, av.error.PatchWelcomeError, av.error.UndefinedError,
            av.error.BugError, av.error.UnknownError, av.error.ArgumentError)


def _frames(container, stream, max_bad_packets: int = 50, max_idle_packets: int = 3000):
    """Decoded frames of one stream, skipping damaged packets (but not endlessly)."""
    bad = idle = 0
    for packet in container.demux(stream):
        try:
            frames = packet.decode()
        except _damage_errors():
            bad += 1
            if bad > max_bad_packets:
                raise
            frames = []
        idle = 0 if frames else idle + 1
        if idle > max_idle_packets:
            raise VideoError("unreadable", f"No picture came out of {max_idle_packets} packets in a row.")
        for frame in frames:
            _check_size(frame.width, frame.height)
            yield frame


def _first_frame(container, stream):
    for frame in _frames(container, stream):
        return frame
    raise VideoError("unreadable", "Not a single picture in the video could be decoded.")


def _rotation(frame, stream) -> int:
    """Degrees clockwise (0/90/180/270) to turn the stored picture to show it upright."""
    counterclockwise = frame.rotation  # from the display matrix (FFmpeg puts it on each frame)
    if counterclockwise:
        return round(-counterclockwise / 90) * 90 % 360
    try:  # files read by old FFmpeg builds, or written by tools that only set the tag
        return round(float(stream.metadata.get("rotate", 0)) / 90) * 90 % 360
    except ValueError:
        return 0


def _pixel_ratio(stream) -> Fraction:
    ratio = stream.sample_aspect_ratio
    if not ratio or ratio <= 0 or not Fraction(1, 4) <= ratio <= 4:
        return Fraction(1)
    return Fraction(ratio)


def _display_size(width: int, height: int, ratio: Fraction, rotation: int) -> tuple[int, int]:
    if ratio != 1:
        width = max(1, round(width * ratio))
    if rotation in (90, 270):
        width, height = height, width
    return width, height


def _creation_time(container, stream) -> tuple[dt.datetime | None, int | None]:
    """When the video was made, from container metadata: (naive UTC, minutes east of UTC)."""
    tags = container.metadata
    candidates = [
        tags.get("com.apple.quicktime.creationdate"),  # local time with its offset
        tags.get("creation_time"),                     # UTC
        stream.metadata.get("creation_time"),
        tags.get("date"),
    ]
    for value in candidates:
        moment, offset = _parse_time(value)
        if moment is not None:
            return moment, offset
    return None, None


def _parse_time(value) -> tuple[dt.datetime | None, int | None]:
    if not isinstance(value, str) or not value.strip():
        return None, None
    text = value.strip()
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        try:
            moment = dt.datetime.strptime(text[:19], "%Y:%m:%d %H:%M:%S")
        except ValueError:
            return None, None
    offset = None
    if moment.tzinfo is not None:
        shift = moment.utcoffset()
        # "Z" says the time is written in UTC, not where the video was made.
        if shift and not text.endswith("Z"):
            offset = int(shift.total_seconds() // 60)
        elif not text.endswith("Z") and (text.endswith("+0000") or text.endswith("+00:00")):
            offset = 0
        moment = moment.astimezone(dt.timezone.utc).replace(tzinfo=None)
    if moment.year < 1971:  # zero dates: the QuickTime (1904) and Unix (1970) epochs
        return None, None
    return moment, offset


def _probe_task(path: str) -> dict:
    with _open(path) as container:
        stream = _video_stream(container)
        audio = _audio_stream(container)
        frame = _first_frame(container, stream)
        rotation = _rotation(frame, stream)
        width, height = _display_size(frame.width, frame.height, _pixel_ratio(stream), rotation)
        duration = None
        if container.duration and container.duration > 0:
            duration = container.duration / 1_000_000
        elif stream.duration and stream.time_base:
            duration = float(stream.duration * stream.time_base)
        created, offset = _creation_time(container, stream)
        return {
            "duration": duration,
            "video_codec": stream.codec_context.codec.canonical_name,
            "audio_codec": audio.codec_context.codec.canonical_name if audio else None,
            "container": container.format.name,
            "width": width,
            "height": height,
            "rotation": rotation,
            "creation_time": created.isoformat() if created else None,
            "creation_offset": offset,
            "live_id": container.metadata.get(LIVE_PHOTO_KEY),
        }


def _poster_task(path: str, out_path: str, duration: float | None) -> dict:
    from PIL import Image

    frame, stream = None, None
    if duration is not None and duration >= 2 * POSTER_AT:
        with _open(path) as container:
            stream = _video_stream(container)
            frame = _frame_near(container, stream, POSTER_AT)
            ratio = _pixel_ratio(stream)
            if frame is not None:
                image, rotation = _sdr_image(frame), _rotation(frame, stream)
    if frame is None:  # short clip, or seeking did not work: the first frame
        with _open(path) as container:
            stream = _video_stream(container)
            frame = _first_frame(container, stream)
            ratio = _pixel_ratio(stream)
            image, rotation = _sdr_image(frame), _rotation(frame, stream)
    size = _display_size(image.width, image.height, ratio, 0)
    if size != image.size:
        image = image.resize(size, Image.Resampling.BICUBIC)
    turn = {90: Image.Transpose.ROTATE_270, 180: Image.Transpose.ROTATE_180,
            270: Image.Transpose.ROTATE_90}.get(rotation)  # Pillow turns counter-clockwise
    if turn is not None:
        image = image.transpose(turn)
    image.convert("RGB").save(out_path, "JPEG", quality=90)
    return {"width": image.width, "height": image.height}


def _frame_near(container, stream, seconds: float):
    """The first frame at or after ``seconds`` from the start (or the last one before the end)."""
    import av

    time_base = stream.time_base or Fraction(1, 1_000_000)
    start = float(stream.start_time * time_base) if stream.start_time is not None else 0.0
    target = start + seconds
    try:
        container.seek(int(target / time_base), stream=stream, backward=True)
    except av.error.FFmpegError:
        return None
    last = None
    try:
        for frame in _frames(container, stream):
            if frame.time is None:
                continue
            if frame.time >= target - 0.001:
                return frame
            last = frame
    except av.error.FFmpegError:
        pass
    return last


def _even(value: float) -> int:
    return max(2, int(value) // 2 * 2)


def _web_size(width: int, height: int) -> tuple[int, int]:
    """Fit into 1920x1080 (or 1080x1920), never enlarge, even numbers."""
    scale = min(1.0, WEB_MAX_LONG / max(width, height), WEB_MAX_SHORT / min(width, height))
    return _even(width * scale + 0.5), _even(height * scale + 0.5)


# --- HDR to SDR ---------------------------------------------------------------
# iPhones (since the 12) film in HDR by default: 10-bit HEVC with the HLG curve and
# BT.2020 colours; Android phones' HDR10 uses the PQ curve. Shown as ordinary video
# (BT.709) the pictures come out grey and washed out, so the web copy and the poster
# are mapped to SDR: to linear light, BT.2020 to BT.709 colours, a soft shoulder for
# the highlights, then back to an SDR signal. HLG carries scene light, so it gets the
# camera's BT.709 curve; PQ carries display light, so it gets the inverse of SDR
# displays' 2.4 curve (BT.1886). BT.2408's reference white (75 % HLG, 203 cd/m² in PQ)
# lands near SDR's white and its 18 % grey card (38 % signal in both) near SDR's.
# FFmpeg's own tone mappers need libraries PyAV's wheel does not have (zimg,
# libplacebo); these filters it has.
HLG, PQ = 18, 16  # AVColorTransferCharacteristic
_MATRICES = {1: "bt709", 5: "bt470", 6: "smpte170m", 7: "smpte240m"}  # AVColorSpace said otherwise
BT709 = 1  # AVColorPrimaries
_HEADROOM = 4  # linear light is kept as a share of 4x reference white in the 16-bit steps
_E = "(val/65535)"
_HLG_LINEAR = (f"if(lte({_E},0.5),{_E}*{_E}/3,(exp(({_E}-0.55991073)/0.17883277)+0.28466892)/12)"
               f"/0.26496256")  # scene light, reference white (75 % signal) = 1
_PQ_POWER = f"pow({_E},1/78.84375)"
_PQ_LINEAR = (f"pow(max({_PQ_POWER}-0.8359375,0)/(18.8515625-18.6875*{_PQ_POWER}),1/0.1593017578125)"
              f"*10000/203")  # display light, reference white (203 cd/m²) = 1
_X = f"(val/65535*{_HEADROOM})"
_SHOULDER = f"if(lte({_X},0.8),{_X},0.8+0.2*({_X}-0.8)/({_X}-0.6))"  # up to 1 without a hard clip
_BT709_CURVE = f"if(lt({_SHOULDER},0.018),4.5*{_SHOULDER},1.099*pow({_SHOULDER},0.45)-0.099)"
_BT1886_INVERSE = f"pow({_SHOULDER},1/2.4)"
_BT2020_TO_BT709 = ("rr=1.6605:rg=-0.5876:rb=-0.0728:gr=-0.1246:gg=1.1329:gb=-0.0083:"
                    "br=-0.0182:bg=-0.1006:bb=1.1187")  # in linear light (ITU-R BT.2087)


def _is_hdr(frame) -> bool:
    return getattr(frame, "color_trc", None) in (HLG, PQ)


def _lut(expression: str) -> str:
    return f"r='{expression}':g='{expression}':b='{expression}'"


def _to_sdr(graph, frame, size: tuple[int, int] | None) -> list:
    """Filters from an HDR frame to SDR BT.709 (16-bit RGB), scaled to ``size`` on the way."""
    matrix = _MATRICES.get(getattr(frame, "colorspace", None), "bt2020")  # unsaid: as phones film HDR
    levels = "pc" if getattr(frame, "color_range", None) == 2 else "tv"
    fit = f"{size[0]}:{size[1]}:" if size else ""
    linear, curve = (_HLG_LINEAR, _BT709_CURVE) if frame.color_trc == HLG else (_PQ_LINEAR, _BT1886_INVERSE)
    nodes = [
        graph.add("scale", f"{fit}in_color_matrix={matrix}:in_range={levels}"),
        graph.add("format", "gbrp16le"),
        graph.add("lutrgb", _lut(f"min(65535,{linear}/{_HEADROOM}*65535)")),
    ]
    if getattr(frame, "color_primaries", None) != BT709:  # BT.2020, as phones film HDR (or unsaid)
        nodes.append(graph.add("colorchannelmixer", _BT2020_TO_BT709))
    return nodes + [graph.add("lutrgb", _lut(f"{curve}*65535"))]


def _sdr_image(frame):
    """The frame as a Pillow picture in SDR colours (HDR mapped, see above)."""
    import av

    if not _is_hdr(frame):
        return frame.to_image()
    graph = av.filter.Graph()
    nodes = [graph.add_buffer(width=frame.width, height=frame.height, format=frame.format,
                              time_base=Fraction(1, 1000))]
    nodes += _to_sdr(graph, frame, None)
    nodes += [graph.add("format", "rgb24"), graph.add("buffersink")]
    graph.link_nodes(*nodes).configure()
    graph.push(frame)
    return graph.pull().to_image()


def _video_filters(frame, time_base, rotation: int, size: tuple[int, int], fps_cap: bool):
    """Turn upright, fit, square pixels, SDR, yuv420p: rotation is baked into the pixels."""
    import av

    graph = av.filter.Graph()
    nodes = [graph.add_buffer(width=frame.width, height=frame.height, format=frame.format,
                              time_base=time_base)]
    if rotation == 90:
        nodes.append(graph.add("transpose", "clock"))
    elif rotation == 270:
        nodes.append(graph.add("transpose", "cclock"))
    elif rotation == 180:
        nodes += [graph.add("hflip"), graph.add("vflip")]
    if fps_cap:
        nodes.append(graph.add("fps", "60"))
    if _is_hdr(frame):
        nodes += _to_sdr(graph, frame, size)
        nodes.append(graph.add("scale", "out_color_matrix=bt709:out_range=tv"))
    else:
        nodes.append(graph.add("scale", f"{size[0]}:{size[1]}"))
    nodes += [
        graph.add("setsar", "1"),
        graph.add("format", "yuv420p"),
        graph.add("buffersink"),
    ]
    graph.link_nodes(*nodes).configure()
    return graph


class _WebCopy:
    """One transcode: decoded frames in, H.264/AAC packets out."""

    AUDIO_RATE = 48000
    TIME_BASE = Fraction(1, 90000)

    def __init__(self, source, video, audio, target, first_frame):
        import av

        self.video, self.target = video, target
        self.start = source.start_time / 1_000_000 if source.start_time else 0.0
        rate = video.guessed_rate or video.average_rate or Fraction(30)
        self.fps_cap = rate > 61  # slow-motion phone clips: 120/240 fps is too much for a TV
        rate = Fraction(60) if self.fps_cap else (rate if rate >= 1 else Fraction(30))
        self.rotation = _rotation(first_frame, video)
        shown = _display_size(first_frame.width, first_frame.height, _pixel_ratio(video),
                              self.rotation)
        self.size = _web_size(*shown)
        threads = min(MAX_THREADS, os.cpu_count() or 1)

        self.encoder = target.add_stream("libx264", rate=rate, options={
            "preset": "veryfast", "crf": "23", "profile": "high"})
        self.encoder.width, self.encoder.height = self.size
        self.encoder.pix_fmt = "yuv420p"
        if _is_hdr(first_frame):  # mapped to BT.709 (see _to_sdr): say so, not left to the player
            context = self.encoder.codec_context
            context.color_primaries = context.color_trc = context.colorspace = 1
            context.color_range = 1  # limited ("tv")
        self.encoder.codec_context.time_base = self.TIME_BASE  # fine enough for variable frame rates
        self.encoder.codec_context.thread_count = threads
        self.sound = self.resampler = None
        if audio is not None:
            self.sound = target.add_stream("aac", rate=self.AUDIO_RATE)
            self.sound.layout = "stereo"
            self.sound.bit_rate = 128_000
            self.resampler = av.AudioResampler(format="fltp", layout="stereo", rate=self.AUDIO_RATE)
        self.graph = self.shape = None
        self.last_pts = -1
        self.frames = 0
        self.audio_next = None

    def add_video(self, frame) -> None:
        shape = (frame.width, frame.height, frame.format.name)
        if shape != self.shape:  # the first frame, or the stream changed size midway
            if self.graph is not None:
                self._drain(flush=True)
            self.graph = _video_filters(frame, self.video.time_base, self.rotation, self.size,
                                        self.fps_cap)
            self.shape = shape
        self.graph.push(frame)
        self._drain()

    def _drain(self, flush: bool = False) -> None:
        import av

        if flush:
            self.graph.push(None)
        while True:
            try:
                frame = self.graph.pull()
            except (av.error.BlockingIOError, av.error.EOFError):
                return
            if frame.time is None:
                pts = self.last_pts + 1
            else:
                pts = round((frame.time - self.start) / self.TIME_BASE)
            pts = max(pts, self.last_pts + 1)  # the encoder wants them rising
            self.last_pts = pts
            frame.pts, frame.time_base = pts, self.TIME_BASE
            self._mux(self.encoder.encode(frame))
            self.frames += 1

    def add_audio(self, frame) -> None:
        if self.audio_next is None:
            begin = frame.time - self.start if frame.time is not None else 0.0
            self.audio_next = max(0, round(begin * self.AUDIO_RATE))
        self._encode_audio(self.resampler.resample(frame))

    def _encode_audio(self, chunks) -> None:
        for chunk in chunks:
            chunk.pts, chunk.time_base = self.audio_next, Fraction(1, self.AUDIO_RATE)
            self.audio_next += chunk.samples
            self._mux(self.sound.encode(chunk))

    def finish(self) -> None:
        if self.graph is None:
            raise VideoError("unreadable", "Not a single picture in the video could be decoded.")
        self._drain(flush=True)
        self._mux(self.encoder.encode(None))
        if self.sound is not None:
            if self.audio_next is not None:
                self._encode_audio(self.resampler.resample(None))
            self._mux(self.sound.encode(None))

    def _mux(self, packets) -> None:
        for packet in packets:
            self.target.mux(packet)


def _web_copy_task(path: str, out_path: str) -> dict:
    import av

    with _open(path) as source:  # a first look: rotation and size, before any output
        first = _first_frame(source, _video_stream(source))
    with _open(path) as source:
        video, audio = _video_stream(source), _audio_stream(source)
        with av.open("file:" + os.path.abspath(out_path), mode="w", format="mp4",
                     options={"movflags": "+faststart"}) as target:
            copy = _WebCopy(source, video, audio, target, first)
            bad = 0
            for packet in source.demux(*([video] + ([audio] if audio is not None else []))):
                try:
                    frames = packet.decode()
                except _damage_errors():
                    bad += 1
                    if bad > 200:
                        raise
                    continue
                for frame in frames:
                    if packet.stream is video:
                        _check_size(frame.width, frame.height)
                        copy.add_video(frame)
                    else:
                        copy.add_audio(frame)
            copy.finish()
    return {"width": copy.size[0], "height": copy.size[1], "frames": copy.frames}


_TASKS = {"probe": _probe_task, "poster": _poster_task, "web_copy": _web_copy_task}


if __name__ == "__main__" and sys.argv[1:] == [_CHILD_FLAG]:
    _child_main()
