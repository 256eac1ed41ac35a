"""Media benchmark: photo renditions beside pyvips, a 500-photo import, and a HEVC web copy.

Three parts, each run beside a peer measured in the same run:

1. **Renditions of one 12-megapixel JPEG.** ``picup.media.photo.render_photo``
   (WebP thumbnail fitting 400x400 + JPEG display size fitting 2048x2048 +
   ThumbHash placeholder) against pyvips' ``thumbnail`` making the same two
   sizes (``thumbnail(path, 400)`` saved as WebP, ``thumbnail(path, 2048)``
   saved as JPEG q85). Runs are interleaved, cache warm; medians. Done for a
   plain photo, the same photo with EXIF orientation 6 and, for information,
   with an embedded sRGB ICC profile.
2. **Import of 500 photos (2-12 MP) on this machine.** ``picup import`` into a
   fresh data folder (ingest only), then ``picup worker`` until no item is
   left with render_status 'pending'; photos per second for both, and the CPU
   use of every core and of the worker's process tree while it renders.
   Every rendition is then checked (present, right size, upright).
3. **A 1080p HEVC clip with AAC sound** (default 60 s, made with PyAV's
   libx265): ``probe_video`` + ``make_web_copy``, as a multiple of the clip's
   duration; the copy is decoded in full to check it is H.264 + AAC of the
   right length.

    .venv/bin/python bench/thumbnails.py                    # everything, ~4 min
    .venv/bin/python bench/thumbnails.py --only render      # part 1 only
    .venv/bin/python bench/thumbnails.py --hevc-seconds 15  # a shorter clip

Needs pyvips for part 1 (``pip install -e '.[bench]'``, which brings the
libvips binary wheel). Nothing is asserted about speed: the script prints
figures and PASS/MISS per target. It exits non-zero only when the benchmark
could not run (pyvips missing included) or found wrong results: a photo that
did not get its renditions, a rendition of the wrong size or turned the wrong
way, a web copy that is not H.264 + AAC of the clip's length.
"""

from __future__ import annotations

import argparse
import array
import io
import math
import os
import random
import re
import resource
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from fractions import Fraction
from pathlib import Path

MiB = 1024 * 1024
REPO = Path(__file__).resolve().parent.parent
TARGET_RENDER_RATIO = 1.0   # Picup time / pyvips time, per photo
TARGET_CORE_BUSY = 75.0     # % busy, every core, while the worker renders the import
TARGET_VIDEO_RATIO = 1.0    # web-copy time / clip duration
SAMPLE_EVERY = 0.2          # seconds between CPU samples during the import's rendering
CLK_TCK = os.sysconf("SC_CLK_TCK")
CORES = os.cpu_count() or 1
PHOTO_W, PHOTO_H = 4000, 3000  # 12 MP

# The sizes the import is made of (width, height of the stored pixels), used in turn.
IMPORT_BASES = [
    ("12 MP", (4000, 3000)),
    ("12 MP portrait", (3000, 4000)),
    ("8 MP", (3264, 2448)),
    ("5 MP", (2592, 1944)),
    ("2 MP", (1632, 1224)),
]
ROTATE_EVERY = 7  # every 7th landscape photo carries EXIF orientation 6 (camera held upright)

line = lambda label, text: print(f"  {label:<44}{text}")  # noqa: E731
verdict = lambda ok: "PASS" if ok else "MISS"  # noqa: E731


def ms(seconds: float) -> str:
    return f"{seconds * 1000:7.1f} ms"


def picup_command() -> list[str]:
    """`.venv/bin/picup` next to the interpreter running this script, else `python -m picup.cli`."""
    script = Path(sys.executable).parent / "picup"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "picup.cli"]


def clean_env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PICUP_")}
    env["PICUP_LOG_LEVEL"] = "WARNING"
    return env


# ------------------------------------------------------------ photo making
def photo_canvas(size: tuple[int, int], seed: int):
    """A photo-like RGB picture: smooth shapes and gradients, plus sensor-like noise.

    The noise (a few levels of grain per channel) is what makes it compress
    like a real photo at quality 92: ~4 MB for 12 MP, instead of the ~0.3 MB
    a clean gradient would give.
    """
    from PIL import Image, ImageChops, ImageDraw, ImageFilter

    width, height = size
    small = (max(8, width // 8), max(8, height // 8))
    rnd = random.Random(seed)
    red = Image.linear_gradient("L").rotate(rnd.choice([0, 90, 180, 270])).resize(small)
    green = Image.radial_gradient("L").resize(small)
    blue = Image.effect_mandelbrot(small, (-2.2, -1.2, 1.0, 1.2), 60)
    base = Image.merge("RGB", (red, green, blue)).filter(ImageFilter.GaussianBlur(2))
    draw = ImageDraw.Draw(base)
    for _ in range(40):  # a few soft "objects"
        x, y, s = rnd.randrange(small[0]), rnd.randrange(small[1]), rnd.randrange(5, max(6, small[0] // 8))
        draw.ellipse((x, y, x + s, y + s * 0.7), fill=tuple(rnd.randrange(256) for _ in range(3)))
    base = base.filter(ImageFilter.GaussianBlur(1.5)).resize(size, Image.Resampling.BICUBIC)
    noise = Image.merge("RGB", [Image.effect_noise(size, sigma) for sigma in (10, 9, 11)])
    return ImageChops.add(base, noise, 1.0, -128)


def exif_bytes(index: int, orientation: int = 1, *, gps: bool = True) -> bytes:
    """An APP1 EXIF payload (b"Exif\\0\\0..."): camera, a date per index, GPS, a unique id."""
    from PIL import Image

    exif = Image.Exif()
    taken = time.gmtime(1_600_000_000 + index * 3671)
    stamp = time.strftime("%Y:%m:%d %H:%M:%S", taken)
    exif[0x010F] = "BenchCam"
    exif[0x0110] = "PX-1"
    exif[0x0112] = orientation
    exif[0x0132] = stamp
    exif.get_ifd(0x8769).update({0x9003: stamp, 0x9011: "+09:00", 0xA420: f"picup-bench-{index:08d}"})
    if gps:
        exif.get_ifd(0x8825).update({1: "N", 2: (37.0, 33.0, 59.5), 3: "E", 4: (126.0, 58.0, 40.2)})
    return exif.tobytes()


def with_exif(jpeg: bytes, exif: bytes) -> bytes:
    """The JPEG with an APP1 EXIF segment put after SOI (and after JFIF's APP0 when there is one)."""
    if jpeg[:2] != b"\xff\xd8":
        raise ValueError("not a JPEG")
    at = 2
    if jpeg[2:4] == b"\xff\xe0":
        at = 4 + int.from_bytes(jpeg[4:6], "big")
    if len(exif) + 2 > 0xFFFF:
        raise ValueError("EXIF too large for one segment")
    segment = b"\xff\xe1" + (len(exif) + 2).to_bytes(2, "big") + exif
    return jpeg[:at] + segment + jpeg[at:]


def encode_jpeg(image, **options) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=92, **options)
    return out.getvalue()


# -------------------------------------------------- part 1: one 12 MP photo
def pyvips_renditions(pyvips, src: str, out_dir: Path) -> tuple:
    """The peer: libvips' thumbnail (shrink-on-load, auto-rotate) to the same two sizes."""
    thumb = pyvips.Image.thumbnail(src, 400)
    thumb.write_to_file(str(out_dir / "vips-thumb.webp"), Q=80)  # Picup's THUMB_QUALITY
    display = pyvips.Image.thumbnail(src, 2048)
    display.write_to_file(str(out_dir / "vips-display.jpg"), Q=85)
    return (thumb.width, thumb.height), (display.width, display.height)


def timed(fn, *args):
    cpu, wall = time.process_time(), time.perf_counter()
    result = fn(*args)
    return time.perf_counter() - wall, time.process_time() - cpu, result


def picup_steps(src: str, out_dir: Path) -> dict[str, float]:
    """Picup's render, step by step, with the same Pillow calls and settings as media/photo.py.

    For information: where the time goes. A plain-sRGB photo without ICC
    profile (so no colour conversion step).
    """
    from PIL import Image

    from picup.media import photo, placeholder

    steps = {}
    t = time.perf_counter()
    image = Image.open(src)
    wanted = photo._fit(image.size, photo.DISPLAY_BOX)
    image.draft(None, (int(wanted[0] * photo.DRAFT_SLACK), int(wanted[1] * photo.DRAFT_SLACK)))
    image.load()
    steps["decode with draft scaling"] = time.perf_counter() - t
    t = time.perf_counter()
    target = photo._fit(image.size, photo.DISPLAY_BOX)
    picture = image.resize(target, Image.Resampling.LANCZOS, reducing_gap=3.0) if image.size != target \
        else image.copy()
    steps["resize to display size"] = time.perf_counter() - t
    t = time.perf_counter()
    display = photo._encode(picture, "JPEG", quality=photo.DISPLAY_QUALITY, progressive=True, optimize=True)
    steps["display JPEG (progressive, optimize)"] = time.perf_counter() - t
    t = time.perf_counter()
    small = picture.copy()
    small.thumbnail((photo.THUMB_BOX, photo.THUMB_BOX), Image.Resampling.LANCZOS)
    steps["resize to thumbnail (Lanczos)"] = time.perf_counter() - t
    t = time.perf_counter()
    thumb = photo._encode(small, "WEBP", quality=photo.THUMB_QUALITY, method=4)
    steps["thumbnail WebP"] = time.perf_counter() - t
    t = time.perf_counter()
    placeholder.encode(small)
    steps["ThumbHash placeholder"] = time.perf_counter() - t
    t = time.perf_counter()
    photo._publish(str(out_dir), {"step-display.jpg": display, "step-thumb.webp": thumb})
    steps["write both (fsync, rename, fsync dir)"] = time.perf_counter() - t
    t = time.perf_counter()
    photo._encode(picture, "JPEG", quality=photo.DISPLAY_QUALITY)
    steps["(what if) display JPEG, baseline"] = time.perf_counter() - t
    t = time.perf_counter()
    photo._encode(picture, "JPEG", quality=photo.DISPLAY_QUALITY, optimize=True)
    steps["(what if) display JPEG, optimize only"] = time.perf_counter() - t
    return steps


def part_render(args, work: Path) -> tuple[bool, bool]:
    """Returns (results ok, could run)."""
    from PIL import Image, ImageCms

    from picup.media import photo

    print(f"1. Renditions of one 12-megapixel JPEG ({PHOTO_W}x{PHOTO_H}), Picup beside pyvips")
    try:
        import pyvips
    except (ImportError, OSError) as exc:
        print(f"  pyvips cannot be imported ({exc}): install it with  .venv/bin/pip install -e '.[bench]'")
        print("  part 1 SKIPPED: no comparison is made without the peer")
        print()
        return True, False
    pyvips.cache_set_max(0)  # no operation cache: every run decodes the file again
    folder = work / "render"
    out_picup, out_vips = folder / "picup", folder / "vips"
    out_picup.mkdir(parents=True)
    out_vips.mkdir()
    started = time.perf_counter()
    canvas = photo_canvas((PHOTO_W, PHOTO_H), args.seed)
    plain = encode_jpeg(canvas)
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    cases = [
        ("12 MP, plain", with_exif(plain, exif_bytes(1, 1)), True),
        ("12 MP, EXIF orientation 6", with_exif(plain, exif_bytes(2, 6)), True),
        ("12 MP, sRGB ICC profile", with_exif(encode_jpeg(canvas, icc_profile=icc), exif_bytes(3, 1)), False),
        # Smaller photos (older phones, many cameras): no 1/2 draft scale covers the display size, so
        # Picup decodes them in full and resizes; for information, not a target.
        ("8 MP, 3264x2448", with_exif(encode_jpeg(canvas.crop((0, 0, 3264, 2448))), exif_bytes(4, 1)), False),
        ("5 MP, 2592x1944", with_exif(encode_jpeg(canvas.crop((0, 0, 2592, 1944))), exif_bytes(5, 1)), False),
    ]
    paths = []
    for index, (_name, data, _target) in enumerate(cases):
        path = folder / f"photo-{index}.jpg"
        path.write_bytes(data)
        paths.append(path)
    print(f"  made the test photos in {time.perf_counter() - started:.1f} s: "
          f"{len(cases[0][1]) / MiB:.1f} MiB JPEG q92 (gradients, shapes, grain); "
          f"pyvips {pyvips.__version__}, libvips {pyvips.version(0)}.{pyvips.version(1)}.{pyvips.version(2)} "
          f"({pyvips.concurrency_get()} threads)")
    print(f"  {args.runs} interleaved runs each after one warm-up, file in page cache; "
          "times are wall clock, CPU is this process (all threads)")
    print()
    ok = True
    ratios = []
    print(f"  {'photo':<30}{'Picup median':>13}{'CPU':>10}{'pyvips median':>15}{'CPU':>10}{'Picup/pyvips':>14}")
    for (name, _data, target), path in zip(cases, paths):
        picup_runs, vips_runs = [], []
        photo.render_photo(str(path), str(out_picup))
        pyvips_renditions(pyvips, str(path), out_vips)
        for _ in range(args.runs):
            wall, cpu, result = timed(photo.render_photo, str(path), str(out_picup))
            picup_runs.append((wall, cpu))
            wall, cpu, vips_sizes = timed(pyvips_renditions, pyvips, str(path), out_vips)
            vips_runs.append((wall, cpu))
        p_wall = statistics.median(w for w, _c in picup_runs)
        p_cpu = statistics.median(c for _w, c in picup_runs)
        v_wall = statistics.median(w for w, _c in vips_runs)
        v_cpu = statistics.median(c for _w, c in vips_runs)
        ratio = p_wall / v_wall
        ratios.append((name, ratio, target))
        print(f"  {name:<30}{ms(p_wall):>13}{ms(p_cpu):>10}{ms(v_wall):>15}{ms(v_cpu):>10}{ratio:>13.2f}x")
        # The renditions must be what they claim: sizes that fit, upright.
        with Image.open(result.thumb_path) as thumb, Image.open(result.display_path) as display:
            t_size, d_size = thumb.size, display.size
        upright = (result.width, result.height)
        portrait = upright[1] > upright[0]
        good = (max(t_size) <= 400 and max(d_size) <= 2048 and (t_size[1] > t_size[0]) == portrait
                and (d_size[1] > d_size[0]) == portrait and bool(result.placeholder))
        ok &= good
        print(f"  {'':<30}Picup: thumb {t_size[0]}x{t_size[1]} {os.path.getsize(result.thumb_path) // 1024} KiB, "
              f"display {d_size[0]}x{d_size[1]} {os.path.getsize(result.display_path) // 1024} KiB"
              f"{'' if good else '  WRONG SIZE OR TURN'};  "
              f"pyvips: {vips_sizes[0][0]}x{vips_sizes[0][1]} "
              f"{os.path.getsize(out_vips / 'vips-thumb.webp') // 1024} KiB, {vips_sizes[1][0]}x{vips_sizes[1][1]} "
              f"{os.path.getsize(out_vips / 'vips-display.jpg') // 1024} KiB")
    print()
    print("  Reading it: Picup decodes the file once (JPEG draft: libjpeg scales by 1/2 while decoding, so a")
    print("  4000x3000 photo comes out 2000x1500 and is not resized again; the display size may be up to 10%")
    print("  under 2048), makes the thumbnail from that, also computes the ThumbHash placeholder and reads EXIF,")
    print("  writes progressive+optimized JPEG and fsyncs both files. pyvips' thumbnail opens the file twice")
    print("  (shrink-on-load), makes exactly 2048 px (so it decodes this photo at full size for the display")
    print("  size), writes baseline JPEG, no fsync. With an ICC profile Picup converts to sRGB and drops the")
    print("  profile; pyvips' thumbnail keeps the embedded profile and converts nothing (for information only).")
    print("  An 8 or 5 MP photo is under twice the display size, so no draft scale applies: Picup decodes it")
    print("  in full and resizes with Lanczos; libvips does the same, but its resize is vectorised and threaded.")
    print()
    breakdown = []
    for label, index in (("12 MP", 0), ("8 MP", 3)):
        steps_runs: dict[str, list[float]] = {}
        for _ in range(max(3, args.runs)):
            for key, value in picup_steps(str(paths[index]), out_picup).items():
                steps_runs.setdefault(key, []).append(value)
        breakdown.append((label, {key: statistics.median(values) for key, values in steps_runs.items()}))
    print("  Where Picup's time goes (the same Pillow calls as media/photo.py, step by step, medians):")
    print(f"  {'':<44}" + "".join(f"{label:>18}" for label, _s in breakdown))
    totals = [sum(v for k, v in steps.items() if not k.startswith("(")) for _l, steps in breakdown]
    for key in breakdown[0][1]:
        cells = []
        for (_label, steps), total in zip(breakdown, totals):
            share = "      " if key.startswith("(") else f" {steps[key] / total * 100:4.0f}%"
            cells.append(f"{ms(steps[key])}{share}")
        line(f"  {key}", "".join(f"{c:>18}" for c in cells))
    line("  sum of the steps", "".join(f"{ms(t) + '      ':>18}" for t in totals))
    print()
    print("Targets (part 1)")
    for name, ratio, target in ratios:
        if target:
            line(f"Picup/pyvips ≤ {TARGET_RENDER_RATIO:.1f}, {name}", f"{ratio:7.2f}x      "
                 f"{verdict(ratio <= TARGET_RENDER_RATIO)}")
        else:
            line(f"Picup/pyvips, {name}", f"{ratio:7.2f}x      (for information)")
    line("renditions fit their boxes and are upright", f"{'yes' if ok else 'NO':>7}       "
         f"{'PASS' if ok else 'FAIL'}")
    print()
    return ok, True


# ------------------------------------------------- part 2: a 500-photo import
def machine_cpu() -> dict[str, tuple[int, int]]:
    """Per core (and "cpu" for all): (busy jiffies, total jiffies) from /proc/stat. Nice counts as busy."""
    cores = {}
    with open("/proc/stat") as fh:
        for text in fh:
            if not text.startswith("cpu"):
                break
            name, *values = text.split()
            numbers = [int(v) for v in values[:8]]  # user nice system idle iowait irq softirq steal
            idle = numbers[3] + numbers[4]
            cores[name] = (sum(numbers) - idle, sum(numbers))
    return cores


def tree_cpu(root: int) -> tuple[float, int]:
    """CPU seconds used by ``root`` and every live descendant (with their reaped children); process count."""
    parents, times = {}, {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(entry)
        parents[pid] = int(fields[1])
        times[pid] = sum(int(v) for v in fields[11:15])  # utime stime cutime cstime
    members = {root} if root in times else set()
    grew = True
    while grew:
        grew = False
        for pid, parent in parents.items():
            if parent in members and pid not in members:
                members.add(pid)
                grew = True
    return sum(times[pid] for pid in members) / CLK_TCK, len(members)


class Sampler(threading.Thread):
    """Every SAMPLE_EVERY s: machine CPU per core, the worker tree's CPU, and render_status counts."""

    def __init__(self, pid: int, database: Path):
        super().__init__(daemon=True)
        self.pid = pid
        self.database = database
        self.samples: list[tuple[float, dict, float, int, dict]] = []
        self.error: str | None = None
        self._stop_event = threading.Event()

    def counts(self, conn) -> dict:
        try:
            rows = conn.execute("SELECT render_status, COUNT(*) FROM media GROUP BY render_status").fetchall()
        except sqlite3.Error as exc:  # e.g. the database is busy for a moment
            self.error = str(exc)
            return {}
        return dict(rows)

    def run(self) -> None:
        conn = sqlite3.connect(f"file:{self.database}?mode=ro", uri=True, timeout=5)
        try:
            while not self._stop_event.is_set():
                moment = time.perf_counter()
                self.samples.append((moment, machine_cpu(), *tree_cpu(self.pid), self.counts(conn)))
                self._stop_event.wait(max(0.0, SAMPLE_EVERY - (time.perf_counter() - moment)))
        finally:
            conn.close()

    def latest(self) -> dict:
        for sample in reversed(self.samples):
            if sample[4]:
                return sample[4]
        return {}

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


def stop_worker(worker: subprocess.Popen, grace: float = 30) -> None:
    """SIGTERM, then SIGKILL to the whole group if it is not gone within ``grace`` s (or on Ctrl+C).

    With the queue empty the worker stops at once; with tasks still queued (an
    interrupted run) it goes on draining them after SIGTERM, so it is not waited for long.
    """
    try:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
            worker.wait(timeout=grace)
    except (subprocess.TimeoutExpired, KeyboardInterrupt):
        pass
    finally:
        try:
            os.killpg(worker.pid, signal.SIGKILL)  # also any pool process left behind
        except (ProcessLookupError, PermissionError):
            pass
        worker.wait()


def make_import_folder(folder: Path, count: int, seed: int) -> tuple[dict[str, tuple], dict[str, int], int]:
    """``count`` distinct JPEGs from a few base pictures; each gets its own EXIF (date, unique id).

    Returns {file name: (upright width, upright height)}, {file name: base index}, total bytes.
    """
    folder.mkdir(parents=True)
    canvas = photo_canvas((PHOTO_W, PHOTO_W), seed + 1)  # square, so both orientations can be cut
    bases = []
    for index, (_label, (width, height)) in enumerate(IMPORT_BASES):
        x, y = (index * 97) % (PHOTO_W - width + 1), (index * 211) % (PHOTO_W - height + 1)
        bases.append(encode_jpeg(canvas.crop((x, y, x + width, y + height))))
    expected, base_of, total = {}, {}, 0
    for index in range(count):
        base = index % len(IMPORT_BASES)
        width, height = IMPORT_BASES[base][1]
        orientation = 6 if index % ROTATE_EVERY == 0 and width > height else 1
        name = f"IMG_{index:04d}.jpg"
        data = with_exif(bases[base], exif_bytes(index, orientation))
        (folder / name).write_bytes(data)
        expected[name] = (height, width) if orientation == 6 else (width, height)
        base_of[name] = base
        total += len(data)
    return expected, base_of, total


def part_import(args, work: Path) -> bool:
    from PIL import Image

    from picup import storage
    from picup.media import photo

    count = args.photos
    print(f"2. Import of {count} photos on this {CORES}-core machine: `picup import`, then `picup worker`")
    photos = work / "photos"
    data = work / "data"
    started = time.perf_counter()
    expected, base_of, total_bytes = make_import_folder(photos, count, args.seed)
    print(f"  made {count} distinct JPEGs ({total_bytes / MiB:.0f} MiB; "
          + ", ".join(label for label, _s in IMPORT_BASES)
          + f" in turn; every {ROTATE_EVERY}th landscape one EXIF-rotated) in {time.perf_counter() - started:.1f} s")

    # Peer for ingest, for information: copy the folder into the same filesystem.
    os.sync()
    t = time.perf_counter()
    subprocess.run(["cp", "-r", str(photos), str(work / "cp-copy")], check=True)
    os.sync()
    cp_s = time.perf_counter() - t
    shutil.rmtree(work / "cp-copy")

    # Peer for rendering: render_photo in this process, one photo of each base (median of 3),
    # scaled to the whole import and divided by the cores: the pool's ideal.
    per_base = {}
    scratch = work / "scratch"
    for base in range(len(IMPORT_BASES)):
        name = next(n for n, b in base_of.items() if b == base)
        runs = [timed(photo.render_photo, str(photos / name), str(scratch))[0] for _ in range(4)][1:]
        per_base[base] = statistics.median(runs)
    shutil.rmtree(scratch, ignore_errors=True)
    serial = sum(per_base[b] for b in base_of.values())
    ideal = serial / CORES

    env = clean_env()
    log_path = work / "picup.log"
    with open(log_path, "ab") as log:
        subprocess.run([*picup_command(), "user", "add", "bench", "--password-stdin", "--data", str(data)],
                       input=b"bench-password-123\n", cwd=REPO, env=env, stdout=log, stderr=log, check=True)
        os.sync()
        t = time.perf_counter()
        done = subprocess.run([*picup_command(), "import", str(photos), "--user", "bench", "--data", str(data)],
                              cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=log)
        ingest_s = time.perf_counter() - t
    summary = done.stdout.decode(errors="replace").strip()
    added = re.search(r"Added (\d+)", summary)
    if done.returncode != 0 or not added or int(added.group(1)) != count:
        print(f"  `picup import` did not add {count} photos (exit {done.returncode}): {summary[:500]}")
        return False

    database = data / "picup.db"
    worker_log = open(work / "worker.log", "wb")
    t0 = time.perf_counter()
    # Its own process group: the worker, its forkserver and pool processes can be ended together.
    worker = subprocess.Popen([*picup_command(), "worker", "--data", str(data)], cwd=REPO, env=env,
                              stdout=worker_log, stderr=subprocess.STDOUT, start_new_session=True)
    sampler = Sampler(worker.pid, database)
    sampler.start()
    finished = False
    try:
        deadline = t0 + args.render_timeout
        while time.perf_counter() < deadline:
            if worker.poll() is not None:
                break
            counts = sampler.latest()
            if counts and sum(counts.values()) >= count and not counts.get("pending"):
                finished = True
                break
            time.sleep(SAMPLE_EVERY / 2)
        t_end = time.perf_counter()
    finally:
        sampler.stop()
        stop_worker(worker, grace=30 if finished else 5)
        worker_log.close()
    samples = sampler.samples
    if not finished:
        counts = sampler.latest()
        print(f"  the worker did not finish within {args.render_timeout:.0f} s "
              f"(exit {worker.returncode}; counts {counts}); last lines of its log:")
        print("    " + "\n    ".join((work / "worker.log").read_text(errors="replace").splitlines()[-15:]))
        return False

    # When did the first and the last rendition land (to the sampling step)?
    def ready(sample) -> int:
        return sample[4].get("ready", 0) + sample[4].get("failed", 0)

    first_done = next((s[0] for s in samples if ready(s) > 0), t_end)
    render_s = t_end - t0
    steady_s = t_end - first_done
    window = [s for s in samples if s[0] <= t_end]
    a, b = window[0], window[-1]
    per_core = {
        name: (b[1][name][0] - a[1][name][0]) / max(1, b[1][name][1] - a[1][name][1]) * 100
        for name in b[1] if name != "cpu"
    }
    tree_s = b[2] - a[2]
    tree_cores = tree_s / (b[0] - a[0])
    # Cores the worker tree used, second by second (roughly): how steady the pool was kept busy.
    buckets = []
    for one, two in zip(window, window[1:]):
        buckets.append((two[0] - t0, (two[2] - one[2]) / (two[0] - one[0])))
    step = max(1.0, render_s / 30)
    profile, edge, acc = [], step, []
    for moment, value in buckets:
        acc.append(value)
        if moment >= edge:
            profile.append(statistics.fmean(acc))
            acc, edge = [], edge + step
    if acc:
        profile.append(statistics.fmean(acc))
    low = sum(1 for _m, v in buckets if v < CORES * 0.5) / max(1, len(buckets)) * 100

    # Check every item and its renditions.
    wrong = []
    conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    rows = conn.execute("SELECT original_filename, sha256, render_status, render_error, width, height, "
                        "placeholder FROM media").fetchall()
    conn.close()
    library = data / "library"
    for name, sha, status, error, width, height, placeholder in rows:
        if status != "ready":
            wrong.append(f"{name}: render_status {status} ({error})")
            continue
        if (width, height) != expected.get(name):
            wrong.append(f"{name}: recorded {width}x{height}, upright size is {expected.get(name)}")
        portrait = expected[name][1] > expected[name][0]
        for key, box in (("thumb.webp", 400), ("preview.jpg", 2048)):
            path = library / storage.derived_key(sha, key)
            try:
                with Image.open(path) as image:
                    size = image.size
            except OSError as exc:
                wrong.append(f"{name}: {key} missing or unreadable ({exc})")
                continue
            if max(size) > box or (size[1] > size[0]) != portrait:
                wrong.append(f"{name}: {key} is {size[0]}x{size[1]}, upright size {expected[name]}")
        if not placeholder:
            wrong.append(f"{name}: no placeholder")
    if len(rows) != count:
        wrong.append(f"{len(rows)} media rows for {count} photos")

    cores_text = ", ".join(f"{name} {value:5.1f}%" for name, value in sorted(per_core.items()))
    line("cp -r + sync of the folder (peer, info)", f"{cp_s:7.2f} s  {count / cp_s:7.1f} photos/s  "
         f"{total_bytes / MiB / cp_s:6.1f} MiB/s")
    line("picup import (ingest only, one process)", f"{ingest_s:7.2f} s  {count / ingest_s:7.1f} photos/s  "
         f"{total_bytes / MiB / ingest_s:6.1f} MiB/s   ({summary.splitlines()[0]})")
    line("picup worker: start → all rendered", f"{render_s:7.2f} s  {count / render_s:7.1f} photos/s")
    line("  first rendition done after", f"{first_done - t0:7.2f} s   (process start, scheduler's first tick)")
    line("  first → last rendition", f"{steady_s:7.2f} s  {count / max(steady_s, 1e-9):7.1f} photos/s")
    line(f"render_photo in one process × {count}, ÷ {CORES}", f"{ideal:7.2f} s  {count / ideal:7.1f} photos/s   "
         f"(ideal pool; per photo: " + ", ".join(
             f"{IMPORT_BASES[b][0]} {per_base[b] * 1000:.0f} ms" for b in per_base) + ")")
    line("  pool efficiency, ideal ÷ start → all rendered", f"{ideal / render_s:7.2f}")
    line("machine CPU busy while rendering, per core", cores_text + "   (nice included; all processes)")
    line("worker process tree CPU", f"{tree_s:7.2f} s = {tree_cores:4.2f} of {CORES} cores on average   "
         f"({max(s[3] for s in window)} processes at most)")
    line("  samples with the tree under half the cores", f"{low:5.1f}%   (every {SAMPLE_EVERY:.1f} s)")
    line("  cores in use over time", " ".join(f"{v:.1f}" for v in profile) + f"   (each ≈ {step:.1f} s)")
    if sampler.error:
        line("  (a status poll failed once)", sampler.error)
    print()
    both = all(value >= TARGET_CORE_BUSY for value in per_core.values())
    print("Targets (part 2)")
    line(f"every core ≥ {TARGET_CORE_BUSY:.0f}% busy while rendering",
         f"{min(per_core.values()):6.1f}%       {verdict(both)}")
    if wrong:
        print(f"  {len(wrong)} problems:")
        for text in wrong[:20]:
            print(f"    {text}")
    line(f"all {count} photos rendered, right size, upright", f"{'yes' if not wrong else 'NO':>7}       "
         f"{'PASS' if not wrong else 'FAIL'}")
    print()
    return not wrong


# --------------------------------------------------- part 3: a HEVC web copy
def make_hevc_clip(path: Path, seconds: int, grain: float = 0, fps: int = 30) -> int:
    """A 1920x1080 HEVC (libx265, ultrafast) + AAC stereo MP4; a textured gradient that pans; frame count.

    ``grain`` > 0 adds changing luma noise of that sigma (8 noise pictures in turn) and encodes at
    CRF 20: a bitrate like a phone's (sigma 5 gives ~14 Mbit/s), and harder work for both codecs.
    """
    import av
    from PIL import Image, ImageChops

    width, height = 1920, 1080
    frames = seconds * fps
    speed = 4  # pixels per frame
    span = width + frames * speed
    gradient = Image.linear_gradient("L").rotate(90).resize((span // 4, height // 4))
    texture = Image.effect_mandelbrot((span // 4, height // 4), (-2.5, -1.0, 1.5, 1.0), 40)
    luma = ImageChops.blend(gradient, texture, 0.4).resize((span, height), Image.Resampling.BILINEAR)
    chroma_u = Image.linear_gradient("L").resize((span // 2, height // 2))
    chroma_v = Image.radial_gradient("L").resize((span // 2, height // 2))
    rate = 48000
    per_frame = rate // fps
    tone = array.array("h", [0]) * (rate * 2)  # one second of a 440 Hz tone, stereo s16
    for k in range(rate):
        tone[2 * k] = tone[2 * k + 1] = int(6000 * math.sin(2 * math.pi * 440 * k / rate))
    tone_bytes = tone.tobytes()
    noise = [Image.effect_noise((width, height), grain) for _ in range(8)] if grain else []
    options = {"preset": "ultrafast", "x265-params": "log-level=error"}
    if grain:
        options["crf"] = "20"
    with av.open(str(path), "w", format="mp4") as out:
        video = out.add_stream("libx265", rate=fps, options=options)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        sound = out.add_stream("aac", rate=rate)
        sound.layout = "stereo"
        sample = 0
        for index in range(frames):
            x = index * speed
            frame = av.VideoFrame(width, height, "yuv420p")
            picture = luma.crop((x, 0, x + width, height))
            if noise:
                picture = ImageChops.add(picture, noise[index % len(noise)], 1.0, -128)
            frame.planes[0].update(picture.tobytes())
            frame.planes[1].update(chroma_u.crop((x // 2, 0, x // 2 + width // 2, height // 2)).tobytes())
            frame.planes[2].update(chroma_v.crop((x // 2, 0, x // 2 + width // 2, height // 2)).tobytes())
            frame.pts, frame.time_base = index, Fraction(1, fps)
            out.mux(video.encode(frame))
            at = (sample % rate) * 4
            chunk = av.AudioFrame(format="s16", layout="stereo", samples=per_frame)
            chunk.planes[0].update(tone_bytes[at:at + per_frame * 4])
            chunk.sample_rate, chunk.pts, chunk.time_base = rate, sample, Fraction(1, rate)
            sample += per_frame
            out.mux(sound.encode(chunk))
        out.mux(video.encode(None))
        out.mux(sound.encode(None))
    return frames


def decode_all(path: Path, stream_type: str = "video") -> tuple[int, float | None, str, tuple]:
    """Decode every frame of the first stream of that type: (frames, last frame time, codec, size)."""
    import av

    with av.open(str(path)) as container:
        stream = next(s for s in container.streams if s.type == stream_type)
        stream.thread_type = "AUTO"
        count, last = 0, None
        for frame in container.decode(stream):
            count += 1
            last = frame.time
        size = (stream.codec_context.width, stream.codec_context.height) if stream_type == "video" else ()
        return count, last, stream.codec_context.name, size


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def part_video(args, work: Path) -> bool:
    import av

    from picup.media import video

    seconds = args.hevc_seconds
    print(f"3. Web copy of a {seconds} s 1080p HEVC clip with AAC sound (probe_video + make_web_copy)")
    folder = work / "video"
    folder.mkdir()
    source = folder / "clip-hevc.mp4"
    started = time.perf_counter()
    frames = make_hevc_clip(source, seconds, args.hevc_grain)
    made_s = time.perf_counter() - started
    bitrate = source.stat().st_size * 8 / seconds / 1e6
    print(f"  made the input in {made_s:.1f} s: {frames} frames at 30 fps, libx265 ultrafast, "
          f"{source.stat().st_size / MiB:.1f} MiB = {bitrate:.1f} Mbit/s video + audio")
    if args.hevc_grain:
        print(f"  (a panning textured gradient with changing grain, sigma {args.hevc_grain:g}, CRF 20)")
    else:
        print("  (a panning textured gradient: far fewer bits than a phone's 1080p HEVC, ~8-20 Mbit/s, so")
        print("  decoding and x264 have an easy time; read the ratio as a best case, and try --hevc-grain 5)")

    t = time.perf_counter()
    decoded, _last, _codec, _size = decode_all(source)
    decode_s = time.perf_counter() - t

    cpu = children_cpu()
    t = time.perf_counter()
    info = video.probe_video(str(source))
    probe_s = time.perf_counter() - t
    copy = folder / "web.mp4"
    t = time.perf_counter()
    video.make_web_copy(str(source), str(copy), info)
    copy_s = time.perf_counter() - t
    child_cpu = children_cpu() - cpu

    duration = info.duration or seconds
    out_frames, out_last, out_codec, out_size = decode_all(copy)
    with av.open(str(copy)) as container:
        out_duration = container.duration / 1_000_000 if container.duration else None
        audio = [s.codec_context.name for s in container.streams.audio]
    audio_frames, _al, _ac, _as = decode_all(copy, "audio")
    problems = []
    if out_codec != "h264":
        problems.append(f"video codec {out_codec}")
    if audio != ["aac"] or audio_frames == 0:
        problems.append(f"audio {audio} ({audio_frames} frames decoded)")
    if out_size != (1920, 1080):
        problems.append(f"size {out_size[0]}x{out_size[1]}")
    if out_duration is None or abs(out_duration - duration) > 0.1:
        problems.append(f"duration {out_duration} s, the clip lasts {duration:.3f} s")
    if out_frames != decoded:
        problems.append(f"{out_frames} frames decoded, the clip has {decoded}")

    ratio = copy_s / duration
    line("probe_video (child process, first frame)", f"{probe_s:7.2f} s   {info.video_codec} + {info.audio_codec}, "
         f"{info.width}x{info.height}, {duration:.2f} s")
    line("decode only, PyAV in this process (info)", f"{decode_s:7.2f} s   {decode_s / duration:5.2f}x real time  "
         f"({decoded} frames, {decoded / decode_s:.0f} fps)")
    line("make_web_copy (child process)", f"{copy_s:7.2f} s   {ratio:5.2f}x real time  "
         f"({frames / copy_s:.0f} fps; child CPU {child_cpu:.1f} s = {child_cpu / (probe_s + copy_s):.2f} cores)")
    line("probe + web copy", f"{probe_s + copy_s:7.2f} s   {(probe_s + copy_s) / duration:5.2f}x real time")
    line("the web copy", f"{out_codec} {out_size[0]}x{out_size[1]} + {','.join(audio) or 'no audio'}, "
         f"{out_duration:.3f} s, {out_frames} frames decoded, {copy.stat().st_size / MiB:.1f} MiB")
    print()
    print("Targets (part 3)")
    line(f"web copy < {TARGET_VIDEO_RATIO:.1f}x real time", f"{ratio:7.2f}x      {verdict(ratio < TARGET_VIDEO_RATIO)}")
    if problems:
        print("  problems: " + "; ".join(problems))
    line("web copy is H.264 + AAC, 1080p, same length", f"{'yes' if not problems else 'NO':>7}       "
         f"{'PASS' if not problems else 'FAIL'}")
    print()
    return not problems


# --------------------------------------------------------------------- main
def run(args) -> int:
    work = Path(tempfile.mkdtemp(prefix="picup-bench-media-", dir=args.dir))
    parts = args.only or ["render", "import", "video"]
    results = []
    could_run = True
    print(f"Picup media benchmark: {', '.join(parts)}; work folder {work}")
    print()
    began = time.perf_counter()
    try:
        if "render" in parts:
            ok, ran = part_render(args, work)
            results.append(ok)
            could_run &= ran
        if "import" in parts:
            results.append(part_import(args, work))
        if "video" in parts:
            results.append(part_video(args, work))
    finally:
        if args.keep:
            print(f"  (kept {work})")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(f"Total {time.perf_counter() - began:.0f} s.")
    if not all(results):
        return 1
    return 0 if could_run else 2


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", action="append", choices=["render", "import", "video"],
                        help="run only this part (repeatable; default: all three)")
    parser.add_argument("--runs", type=int, default=9, help="timed runs per photo in part 1 (median; default 9)")
    parser.add_argument("--photos", type=int, default=500, help="photos in the import, part 2 (default 500)")
    parser.add_argument("--render-timeout", type=float, default=900,
                        help="give up on the worker after this many seconds (default 900)")
    parser.add_argument("--hevc-seconds", type=int, default=60, help="length of the HEVC clip, part 3 (default 60)")
    parser.add_argument("--hevc-grain", type=float, default=0,
                        help="changing luma grain (sigma) in the HEVC clip, for a phone-like bitrate: 5 gives "
                             "~14 Mbit/s but makes the input ~3x slower to make (default 0: none)")
    parser.add_argument("--seed", type=int, default=1, help="seed for the test pictures (default 1)")
    parser.add_argument("--dir", default=None, help="make the work folder here (default: the system temp "
                        "folder); part 2 needs about 3x 1.3 GiB free")
    parser.add_argument("--keep", action="store_true", help="keep the work folder and print its path")
    args = parser.parse_args(argv)
    if args.runs <= 0 or args.photos <= 0 or args.hevc_seconds <= 0 or args.render_timeout <= 0:
        parser.error("--runs, --photos, --hevc-seconds and --render-timeout must be positive")
    if args.hevc_grain < 0:
        parser.error("--hevc-grain cannot be negative")
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
