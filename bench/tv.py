"""TV benchmark: 50 simulated TVs showing slideshows while one person uploads photos.

Starts the real server (``picup run``: waitress, the worker and its photo
pool in one process tree) on a free loopback port with its data in a
temporary folder, creates the first account (``POST /api/v1/setup``) and
builds a library through the API: ``--photos`` distinct photo-like JPEGs
(default 40; 3000x2000, every 4th portrait, camera EXIF, sensor-like grain,
~2 MB each) sent with ``POST /api/v1/media?filename=…`` and rendered by the
worker, which makes each real ``preview.jpg`` (the display size, up to
2048 px) that a TV is sent. They go into one album, and ``--slideshows``
slideshows of it (default 5, each ``{"seconds": 5, "order": "shuffle"}``)
are made with ``POST /api/v1/slideshows``; the TVs are dealt to them in
turn, 10 TVs per link (one family's TVs may share a link, several families
would not; ``--slideshows 1`` puts every TV on one link).

Then, for ``--seconds`` (default 60), all at once:

- ``--tvs`` simulated TVs (default 50), one thread each with its own
  keep-alive ``http.client`` connection, behaving like the real TV page
  (``web/static/tv.js``): on start ``GET /tv/<token>`` (the HTML; its
  ``tv-data`` names the first slide), once each static file the page links
  (``tv-guard.js``, ``tv.css``, ``tv.js``, the icon), the first slide's
  picture, and ``GET /tv/<token>/feed``; then every ``--interval`` seconds
  (default 5) the next picture of a shuffled round of the feed's items
  (``/tv/<token>/media/<id>/display``, body read in full), and every 60 s
  the feed again. The TVs start evenly spread over the first interval. A
  request starts at its due time, or when the one before it ends if that is
  later (a browser does not pile requests up either). The simulated TV has no
  HTTP cache: with 40 photos at 5 s each a round lasts 200 s, so within the
  default window a real TV would not find any of them in its cache either.
- One person uploads photos, one after another with nothing in between
  (``--upload-gap`` adds a pause), like the web page's upload button
  (``web/static/upload.js``): tus, ``POST /api/v1/uploads`` then one
  ``PATCH`` carrying the whole photo (the page's chunks are 8 MiB), which
  is the final one and runs the ingest; ``--upload-via raw`` sends
  ``POST /api/v1/media`` instead. The photos are 12 MP (4000x3000, every
  other one portrait), ~4 MB: four base pictures are encoded before the
  window, and each upload is one of them with its own EXIF segment (date,
  unique id) spliced in, a ~1 ms copy done before its request is timed, so
  every upload has its own SHA-256 and is a new photo, not a duplicate.
  The uploads go to the library, not to the album: the TVs' feeds do not
  change. The worker renders them during the window (its pool runs at nice
  10), which is the load a TV meets on a real evening of uploads.
  Loopback moves a 4 MB body in milliseconds where a phone's Wi-Fi takes
  a second or more, so this is the hardest one person can push.

What is measured, from this client: each request's time from the first
byte sent to the last byte of the answer read, per kind (TV page, static
files, feed, display picture; upload create, upload with the photo), as
count, median, p95, p99 (nearest rank) and max; how late the TVs' requests
left their schedule (when the client's own threads are starved of CPU this
grows, and that delay is not in the latencies); every answer's status,
and the content: each display picture must be a JPEG with the same bytes
(length and CRC-32) as the one fetched and decoded with Pillow before the
window, each feed must list exactly the album's photos, each upload must
answer a new media id.

The target compares the p99 with 200 ms, for the TVs' requests and for the
upload requests that carry a photo (the tiny tus create ``POST`` is
printed, not counted: counting it would halve the weight of the real
ones). An upload's time grows with its size: the body crosses loopback,
waitress spools it to a temporary file, the app reads it, hashes
(SHA-256), writes and fsyncs the part file, then ingests: sniff, probe,
rename into the store, and a re-read and re-hash of the stored blob from
disk. So beside it, the peer, measured in the same run on the same
filesystem as the data folder: writing the same bytes to a new file,
fsync, and one SHA-256 of them, the least any server that stores a photo
safely must do. It is timed 10 times before the window (idle machine) and
after every 5th upload during it (same load; the uploader does it, so it
adds no concurrency). Read the upload p99 against that peer and per MB.

CPU: ``/proc/<pid>/stat`` user + system time (with reaped children) of the
server process and every descendant (the multiprocessing forkserver and
the photo pool's processes), at the window's start and end, as CPU seconds,
% of one core and % of the machine's cores; the main process (waitress,
the app, the worker's scheduler and the ingest) and the rest (rendering)
are also shown apart. This client runs on the same cores: its own CPU
(``getrusage``, all its threads: TVs, uploader, sampler) is printed too,
and ``/proc/stat`` gives how busy each core was. The tree's summed
``VmRSS`` is sampled every 0.5 s for its peak (shared pages count in each
process), for information.

    .venv/bin/python bench/tv.py                     # ~1.5 min, ~5 GiB free in the temp folder
    .venv/bin/python bench/tv.py --tvs 100 --seconds 120 --upload-via raw

Nothing is asserted about speed: the script prints figures and PASS/MISS
per target. It exits 2 when the benchmark cannot run (the server does not
start, the library cannot be made), and 1 when it finds wrong results: a
request answered with an unexpected status or not at all, a display
picture that is not the right JPEG, a feed with the wrong photos, an
upload taken as a duplicate, a photo the worker could not render.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import http.client
import io
import json
import math
import os
import random
import re
import resource
import shutil
import signal
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
import zlib
from http.cookies import SimpleCookie
from pathlib import Path

from picup_server import Server  # bench/, on the path when run as a script
from thumbnails import (  # the same photo making as the media benchmark
    exif_bytes,
    photo_canvas,
    with_exif,
)

TARGET_MS = 200.0  # p99, TV requests and upload requests that carry a photo
FEED_EVERY = 60.0  # tv.js polls the feed once a minute
SAMPLE_EVERY = 0.5  # seconds between CPU/RSS samples of the server tree
PEER_EVERY = 5  # the write+fsync+sha256 peer after every 5th upload
PEER_IDLE_RUNS = 10
SEED_SIZE = (3000, 2000)  # the library's photos (every 4th portrait)
UPLOAD_SIZE = (4000, 3000)  # 12 MP, the uploads (every other one portrait)
USERNAME, PASSWORD = "mum", "bench-password-123"
CLK_TCK = os.sysconf("SC_CLK_TCK")
CORES = os.cpu_count() or 1
MB, MiB = 1000 * 1000, 1024 * 1024
TV_KINDS = ("TV page", "TV static file", "TV feed", "TV display picture")
DATA_RE = re.compile(r'<script type="application/json" id="tv-data">(.*?)</script>', re.DOTALL)
STATIC_RE = re.compile(r'(?:src|href)="(/static/[^"]+)"')

line = lambda label, text: print(f"  {label:<44}{text}")
verdict = lambda ok: "PASS" if ok else "MISS"


class CannotRun(Exception):
    """The benchmark could not run (exit 2)."""


class WrongResult(Exception):
    """The server gave a wrong answer (exit 1)."""


# ----------------------------------------------------------------- helpers
def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def encode_jpeg(image, exif: bytes = b"") -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=92, **({"exif": exif} if exif else {}))
    return out.getvalue()


def proc_stat(pid: int) -> tuple[int, int, int, int, str] | None:
    """(ppid, CPU ticks incl. reaped children, start time, nice, name) of a process, None when gone."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            head, tail = fh.read().rsplit(")", 1)
    except OSError:
        return None
    fields = tail.split()
    return int(fields[1]), sum(int(v) for v in fields[11:15]), int(fields[19]), int(fields[16]), \
        head.split("(", 1)[1]


def vm_rss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for text in fh:
                if text.startswith("VmRSS:"):
                    return int(text.split()[1]) * 1024
    except OSError:
        pass
    return 0


def proc_table() -> dict[int, tuple[int, int, int, int, str]]:
    """{pid: (ppid, ticks, start time, nice, name)} of every process on the machine."""
    table = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = proc_stat(int(entry))
            if stat is not None:
                table[int(entry)] = stat
    return table


def server_tree(root: int, table: dict | None = None) -> dict[int, tuple[int, int, int, int, str]]:
    """{pid: (ppid, ticks, start time, nice, name)} of ``root`` and every live descendant."""
    table = proc_table() if table is None else table
    members = {root} if root in table else set()
    grew = True
    while grew:
        grew = False
        for pid, (ppid, *_rest) in table.items():
            if ppid in members and pid not in members:
                members.add(pid)
                grew = True
    return {pid: table[pid] for pid in members}


def machine_cpu() -> list[tuple[int, int]]:
    """Per core: (busy jiffies, total jiffies) from /proc/stat; nice counts as busy."""
    cores = []
    with open("/proc/stat") as fh:
        for text in fh:
            if text.startswith("cpu") and text[3].isdigit():
                numbers = [int(v) for v in text.split()[1:9]]
                idle = numbers[3] + numbers[4]
                cores.append((sum(numbers) - idle, sum(numbers)))
    return cores


class TreeSampler(threading.Thread):
    """Every SAMPLE_EVERY s: the server tree's members (kept for clean-up) and its summed VmRSS."""

    def __init__(self, root: int):
        super().__init__(daemon=True)
        self.root = root
        self.seen: dict[int, int] = {}  # pid -> start time, every member ever seen
        self.rss_peak = 0
        self.members_max = 0
        self._stop_event = threading.Event()

    def sample(self) -> None:
        tree = server_tree(self.root)
        for pid, (_ppid, _ticks, start, _nice, _name) in tree.items():
            self.seen.setdefault(pid, start)
        self.members_max = max(self.members_max, len(tree))
        self.rss_peak = max(self.rss_peak, sum(vm_rss(pid) for pid in tree))

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.sample()
            self._stop_event.wait(SAMPLE_EVERY)

    def stop(self) -> None:
        self._stop_event.set()
        if self.is_alive():
            self.join()

    def kill_leftovers(self) -> None:
        """SIGKILL descendants still alive after the server stopped (same pid and start time only)."""
        for pid, start in self.seen.items():
            if pid == self.root:
                continue
            stat = proc_stat(pid)
            if stat is not None and stat[2] == start:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass


# ------------------------------------------------------------------ client
class Session:
    """One keep-alive connection; the signed-in person's cookie and CSRF token when given."""

    reconnects = 0

    def __init__(self, port: int, cookie: str = "", csrf: str = "", timeout: float = 60):
        self.port, self.cookie, self.csrf, self.timeout = port, cookie, csrf, timeout
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)

    def request(self, method: str, path: str, body=None, headers: dict | None = None):
        """(status, headers with lower-case names, body); reconnects once if the connection was closed."""
        sent = dict(headers or {})
        if self.cookie:
            sent["Cookie"] = self.cookie
        if self.csrf and method not in ("GET", "HEAD"):
            sent["X-CSRF-Token"] = self.csrf
        for attempt in (1, 2):
            try:
                self.conn.request(method, path, body=body, headers=sent)
                response = self.conn.getresponse()
                data = response.read()
                return response.status, {k.lower(): v for k, v in response.getheaders()}, data
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                Session.reconnects += 1  # the server closed a kept-alive connection: a browser retries too
                self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def json(self, method: str, path: str, payload=None, expect: int = 200) -> dict:
        body = None if payload is None else json.dumps(payload)
        status, _headers, data = self.request(method, path, body, {"Content-Type": "application/json"})
        if status != expect:
            raise CannotRun(f"{method} {path} answered {status}: {data[:300]!r}")
        return json.loads(data) if data else {}

    def close(self) -> None:
        self.conn.close()


def setup(port: int) -> Session:
    """The first account through ``POST /api/v1/setup``; a session carrying its cookie and CSRF token."""
    session = Session(port)
    body = json.dumps({"username": USERNAME, "password": PASSWORD, "display_name": "Mum"})
    session.conn.request("POST", "/api/v1/setup", body=body, headers={"Content-Type": "application/json"})
    response = session.conn.getresponse()
    data = response.read()
    if response.status != 201:
        raise CannotRun(f"setup answered {response.status}: {data[:300]!r}")
    session.csrf = json.loads(data)["csrf_token"]
    jar = SimpleCookie()
    for header, value in response.getheaders():
        if header.lower() == "set-cookie":
            jar.load(value)
    session.cookie = "; ".join(f"{key}={morsel.value}" for key, morsel in jar.items())
    if not session.cookie:
        raise CannotRun("setup set no session cookie")
    return session


class Recorder:
    """Every timed request: (kind, start since t0 in s, ms, status, how late it left in ms)."""

    def __init__(self, t0: float):
        self.t0 = t0
        self.rows: list[tuple[str, float, float, int, float]] = []
        self.errors: list[str] = []
        self.wrong: list[str] = []
        self._lock = threading.Lock()

    def add(self, kind: str, started: float, ended: float, status: int, late: float = 0.0) -> None:
        with self._lock:
            self.rows.append((kind, started - self.t0, (ended - started) * 1000, status, late * 1000))

    def error(self, text: str) -> None:
        with self._lock:
            self.errors.append(text)

    def wrong_result(self, text: str) -> None:
        with self._lock:
            self.wrong.append(text)

    def ms(self, *kinds: str) -> list[float]:
        return [row[2] for row in self.rows if row[0] in kinds]


# ------------------------------------------------------------- the TVs
class TV(threading.Thread):
    """One TV: page, static files, first slide, feed; a slide every ``interval`` s; the feed every minute."""

    def __init__(self, number: int, port: int, token: str, start: float, end: float, interval: float,
                 expected: dict[int, tuple[int, int]], static: list[str], recorder: Recorder,
                 stopping: threading.Event):
        super().__init__(daemon=True, name=f"tv-{number}")
        self.number, self.port, self.token = number, port, token
        self.start_at, self.end, self.interval = start, end, interval
        self.expected, self.static, self.rec, self.stopping = expected, static, recorder, stopping
        self.items: list[int] = []
        self.round: list[int] = []
        self.last: int | None = None
        self.rng = random.Random(number)

    def get(self, kind: str, path: str, due: float | None, session: Session) -> tuple[int, dict, bytes] | None:
        """GET ``path`` in full; ``due`` is when it was scheduled (None: it follows the request before it)."""
        started = time.perf_counter()
        late = float("nan") if due is None else max(0.0, started - due)
        try:
            status, headers, body = session.request("GET", path)
        except (OSError, http.client.HTTPException) as exc:
            self.rec.error(f"{kind} {path}: {type(exc).__name__}: {exc}")
            self.rec.add(kind, started, time.perf_counter(), 0, late)
            return None
        self.rec.add(kind, started, time.perf_counter(), status, late)
        if status != 200:
            self.rec.error(f"{kind} {path}: {status} {body[:120]!r}")
            return None
        return status, headers, body

    def picture(self, media_id: int, due: float | None, session: Session) -> None:
        path = f"/tv/{self.token}/media/{media_id}/display"
        answer = self.get("TV display picture", path, due, session)
        if answer is None:
            return
        _status, headers, body = answer
        length, crc = self.expected[media_id]
        if not headers.get("content-type", "").startswith("image/jpeg") or body[:2] != b"\xff\xd8":
            self.rec.wrong_result(f"{path}: not a JPEG ({headers.get('content-type')}, {body[:8]!r})")
        elif len(body) != length or zlib.crc32(body) != crc:
            self.rec.wrong_result(f"{path}: {len(body)} bytes, not the {length} bytes fetched before the window")
        self.last = media_id

    def feed(self, due: float | None, session: Session) -> None:
        answer = self.get("TV feed", f"/tv/{self.token}/feed", due, session)
        if answer is None:
            return
        try:
            feed = json.loads(answer[2])
            ids = [item["id"] for item in feed["items"]]
            bad_src = [i["src"] for i in feed["items"] if i["src"] != f"/tv/{self.token}/media/{i['id']}/display"]
        except (ValueError, KeyError, TypeError) as exc:
            self.rec.wrong_result(f"feed of TV {self.number}: {exc}")
            return
        if sorted(ids) != sorted(self.expected) or feed.get("state") != "playing" or bad_src:
            self.rec.wrong_result(f"feed of TV {self.number}: state {feed.get('state')!r}, {len(ids)} items "
                                  f"(expected {len(self.expected)}), odd src {bad_src[:2]}")
            return
        if sorted(ids) != sorted(self.items):  # as tv.js: a new set of items starts a new round
            self.items, self.round = ids, []

    def pick(self) -> int:
        """tv.js' shuffle: every item once per round, a round not starting with the one on screen."""
        if not self.round:
            self.round = self.items[:]
            self.rng.shuffle(self.round)
            if len(self.round) > 1 and self.round[0] == self.last:
                j = self.rng.randrange(1, len(self.round))
                self.round[0], self.round[j] = self.round[j], self.round[0]
        return self.round.pop(0)

    def run(self) -> None:
        session = Session(self.port)
        try:
            if self.stopping.wait(max(0.0, self.start_at - time.perf_counter())):
                return
            due = self.start_at
            answer = self.get("TV page", f"/tv/{self.token}", due, session)
            first = None
            if answer is not None:
                match = DATA_RE.search(answer[2].decode("utf-8", "replace"))
                try:
                    data = json.loads(match.group(1)) if match else {}
                    first = data["item"]["id"]
                except (ValueError, KeyError, TypeError):
                    self.rec.wrong_result(f"TV {self.number}: the page names no first slide")
                if first is not None and first not in self.expected:
                    self.rec.wrong_result(f"TV {self.number}: first slide {first} is not in the album")
                    first = None
            for path in self.static:  # these follow the page, as a browser fetches them
                self.get("TV static file", path, None, session)
            if first is not None:
                self.picture(first, None, session)
            self.feed(None, session)
            next_slide, next_feed = self.start_at + self.interval, self.start_at + FEED_EVERY
            while not self.stopping.is_set():
                due = min(next_slide, next_feed)
                if due >= self.end:
                    break
                if self.stopping.wait(max(0.0, due - time.perf_counter())):
                    break
                if due == next_feed:
                    self.feed(due, session)
                    next_feed += FEED_EVERY
                else:
                    if self.items:
                        self.picture(self.pick(), due, session)
                    next_slide += self.interval
        finally:
            session.close()


# ------------------------------------------------------------ the uploader
def peer_write(folder: Path, data: bytes, n: int) -> float:
    """Seconds to write ``data`` to a new file, fsync it and take one SHA-256 of it; the file is removed."""
    path = folder / f"peer-{n}.jpg"
    started = time.perf_counter()
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    hashlib.sha256(data).hexdigest()
    elapsed = time.perf_counter() - started
    path.unlink()
    return elapsed


class Uploader(threading.Thread):
    """One person adding photos one after another until the window ends."""

    def __init__(self, session: Session, bases: list[bytes], via: str, end: float, gap: float,
                 recorder: Recorder, stopping: threading.Event, peer_dir: Path):
        super().__init__(daemon=True, name="uploader")
        self.session, self.bases, self.via, self.end, self.gap = session, bases, via, end, gap
        self.rec, self.stopping, self.peer_dir = recorder, stopping, peer_dir
        self.media_ids: list[int] = []
        self.sizes: list[int] = []
        self.per_mb: list[float] = []  # ms per MB of the requests that carry a photo
        self.peer_s: list[float] = []

    def one(self, index: int) -> None:
        data = with_exif(self.bases[index % len(self.bases)], exif_bytes(100_000 + index))
        name = f"IMG_{index:05d}.jpg"
        if self.via == "raw":
            kind = "upload POST /api/v1/media"
            started = time.perf_counter()
            status, headers, body = self.session.request(
                "POST", f"/api/v1/media?filename={name}", data, {"Content-Type": "application/octet-stream"})
            ended = time.perf_counter()
            self.rec.add(kind, started, ended, status)
            if status != 201:
                self.rec.error(f"{kind} {name}: {status} {body[:200]!r}")
                return
            answer = json.loads(body)
            if answer.get("duplicate"):
                self.rec.wrong_result(f"{name} was taken as a duplicate")
            self.media_ids.append(answer["media"]["id"])
        else:
            meta = "filename " + base64.b64encode(name.encode()).decode()
            started = time.perf_counter()
            status, headers, body = self.session.request("POST", "/api/v1/uploads", b"", {
                "Tus-Resumable": "1.0.0", "Upload-Length": str(len(data)), "Upload-Metadata": meta})
            self.rec.add("upload POST /api/v1/uploads", started, time.perf_counter(), status)
            if status != 201 or not headers.get("location"):
                self.rec.error(f"tus create {name}: {status} {body[:200]!r}")
                return
            kind = "upload PATCH (the photo)"
            started = time.perf_counter()
            status, headers, body = self.session.request("PATCH", headers["location"], data, {
                "Tus-Resumable": "1.0.0", "Upload-Offset": "0",
                "Content-Type": "application/offset+octet-stream"})
            ended = time.perf_counter()
            self.rec.add(kind, started, ended, status)
            if status != 204:
                self.rec.error(f"{kind} {name}: {status} {body[:200]!r}")
                return
            if headers.get("upload-offset") != str(len(data)) or not headers.get("picup-media-id"):
                self.rec.wrong_result(f"{name}: offset {headers.get('upload-offset')} of {len(data)}, "
                                      f"media id {headers.get('picup-media-id')!r}")
                return
            if headers.get("picup-duplicate") != "false":
                self.rec.wrong_result(f"{name} was taken as a duplicate")
            self.media_ids.append(int(headers["picup-media-id"]))
        self.sizes.append(len(data))
        self.per_mb.append((ended - started) * 1000 / (len(data) / MB))
        if (index + 1) % PEER_EVERY == 0:
            self.peer_s.append(peer_write(self.peer_dir, data, index))

    def run(self) -> None:
        index = 0
        try:
            while not self.stopping.is_set() and time.perf_counter() < self.end:
                try:
                    self.one(index)
                except (OSError, http.client.HTTPException) as exc:
                    self.rec.error(f"upload {index}: {type(exc).__name__}: {exc}")
                index += 1
                if self.gap and self.stopping.wait(self.gap):
                    break
        except Exception as exc:  # noqa: BLE001 (reported, the run goes on)
            self.rec.wrong_result(f"uploader stopped: {type(exc).__name__}: {exc}")


# --------------------------------------------------------------- the bench
def make_pictures(args) -> tuple[list[bytes], list[bytes]]:
    """(the library's photos, the upload bases): crops of one 4000x4000 photo-like canvas."""
    canvas = photo_canvas((4000, 4000), args.seed)
    library = []
    for index in range(args.photos):
        width, height = SEED_SIZE if index % 4 != 3 else SEED_SIZE[::-1]
        x, y = (index * 97) % (4000 - width + 1), (index * 211) % (4000 - height + 1)
        crop = canvas.crop((x, y, x + width, y + height))
        library.append(with_exif(encode_jpeg(crop), exif_bytes(index)))
    bases = []
    for index in range(4):
        width, height = UPLOAD_SIZE if index % 2 == 0 else UPLOAD_SIZE[::-1]
        x, y = (index * 331) % (4000 - width + 1), (index * 523) % (4000 - height + 1)
        bases.append(encode_jpeg(canvas.crop((x, y, x + width, y + height))))
    return library, bases


def wait_rendered(session: Session, ids: list[int], timeout: float) -> float:
    """Seconds until every media id answers render status "ready"; WrongResult when one failed."""
    started = time.perf_counter()
    wanted = set(ids)
    while True:
        found, cursor = {}, None
        while True:
            page = session.json("GET", "/api/v1/media?limit=100" + (f"&cursor={cursor}" if cursor else ""))
            found.update({item["id"]: item["render"]["status"] for item in page["items"]})
            cursor = page.get("next_cursor")
            if not cursor:
                break
        failed = [i for i in wanted if found.get(i) == "failed"]
        if failed:
            raise WrongResult(f"the worker could not render media {failed[:5]}")
        if all(found.get(i) == "ready" for i in wanted):
            return time.perf_counter() - started
        if time.perf_counter() - started > timeout:
            left = sum(1 for i in wanted if found.get(i) != "ready")
            raise CannotRun(f"{left} of {len(wanted)} photos not rendered after {timeout:.0f} s")
        time.sleep(0.5)


def render_counts(database: Path, ids: list[int]) -> dict[str, int]:
    if not ids:
        return {}
    conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=10)
    try:
        marks = ",".join("?" * len(ids))
        rows = conn.execute(f"SELECT render_status, COUNT(*) FROM media WHERE id IN ({marks}) GROUP BY 1", ids)
        return dict(rows.fetchall())
    finally:
        conn.close()


def stats_row(label: str, values: list[float], errors: int = 0) -> None:
    if not values:
        line(label, "      0")
        return
    print(f"  {label:<44}{len(values):6d} {statistics.median(values):8.1f} {pct(values, 95):8.1f} "
          f"{pct(values, 99):8.1f} {max(values):8.1f} {errors:7d}")


def run(args) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="picup-bench-tv-", dir=args.dir))
    server = sampler = owner = None
    server_log_shown = False
    stopping = threading.Event()
    threads: list[threading.Thread] = []
    try:
        data_dir, spool_dir, peer_dir = workdir / "data", workdir / "spool", workdir / "data" / "peer"
        data_dir.mkdir()
        spool_dir.mkdir()
        print(f"Picup TV benchmark: {args.tvs} TVs, a slide every {args.interval} s, {args.slideshows} "
              f"slideshow(s), one person uploading ({'tus' if args.upload_via == 'tus' else 'raw POST'}"
              f"{', back to back' if not args.upload_gap else f', {args.upload_gap} s apart'}), "
              f"{args.seconds:.0f} s window, loopback through waitress, {CORES} cores")
        print(f"  work folder {workdir}")

        started = time.perf_counter()
        library_photos, bases = make_pictures(args)
        make_s = time.perf_counter() - started

        server = Server(data_dir, workdir / "server.log", env={"TMPDIR": str(spool_dir)})
        try:
            server.wait_ready()
        except RuntimeError as exc:  # its message ends with the server log's tail
            server_log_shown = True
            raise CannotRun(str(exc)) from None
        sampler = TreeSampler(server.pid)
        sampler.sample()
        owner = setup(server.port)

        # -- the library: raw uploads, rendered by the worker
        started = time.perf_counter()
        ids = []
        for index, content in enumerate(library_photos):
            status, _h, body = owner.request("POST", f"/api/v1/media?filename=LIB_{index:04d}.jpg", content,
                                             {"Content-Type": "application/octet-stream"})
            if status != 201:
                raise CannotRun(f"upload of library photo {index} answered {status}: {body[:300]!r}")
            ids.append(json.loads(body)["media"]["id"])
        upload_s = time.perf_counter() - started
        render_s = wait_rendered(owner, ids, args.render_timeout)
        album = owner.json("POST", "/api/v1/albums", {"title": "TV benchmark"}, expect=201)["album"]
        owner.json("POST", f"/api/v1/albums/{album['id']}/media", {"media_ids": ids})
        tokens = []
        for _ in range(args.slideshows):
            show = owner.json("POST", "/api/v1/slideshows", {"album_id": album["id"], "seconds": args.interval,
                                                             "order": "shuffle"}, expect=201)["slideshow"]
            tokens.append(show["token"])

        # -- before the window: every display picture once (the reference), the page, the feed, warm routes
        from PIL import Image

        probe = Session(server.port)
        status, _h, page = probe.request("GET", f"/tv/{tokens[0]}")
        if status != 200 or not DATA_RE.search(page.decode("utf-8", "replace")):
            raise WrongResult(f"GET /tv/<token> answered {status} without its tv-data")
        static = sorted(set(STATIC_RE.findall(page.decode("utf-8", "replace"))))
        status, _h, body = probe.request("GET", f"/tv/{tokens[0]}/feed")
        feed = json.loads(body) if status == 200 else {}
        if sorted(item["id"] for item in feed.get("items", [])) != sorted(ids):
            raise WrongResult(f"the feed answered {status} with {len(feed.get('items', []))} of {len(ids)} photos")
        expected, display_sizes = {}, []
        for item in feed["items"]:
            status, _headers, body = probe.request("GET", item["src"])
            if status != 200:
                raise WrongResult(f"GET {item['src']} answered {status}")
            picture = Image.open(io.BytesIO(body))
            picture.load()
            if picture.format != "JPEG" or max(picture.size) > 2048 or (
                    (picture.width > picture.height) != (item["width"] > item["height"])):
                raise WrongResult(f"{item['src']}: {picture.format} {picture.size}, photo {item['width']}x"
                                  f"{item['height']}: not a display-size JPEG of it")
            expected[item["id"]] = (len(body), zlib.crc32(body))
            display_sizes.append(len(body))
        for path in static:
            probe.request("GET", path)
        probe.close()

        # warm the upload route with one photo, and let the worker render it: the window starts idle
        warm = Uploader(owner, bases, args.upload_via, time.perf_counter() + 3600, 0, Recorder(0), stopping,
                        peer_dir)
        peer_dir.mkdir()
        warm.one(99_999)
        if warm.rec.errors or warm.rec.wrong:
            raise CannotRun(f"the warm-up upload failed: {(warm.rec.errors + warm.rec.wrong)[0]}")
        wait_rendered(owner, warm.media_ids, args.render_timeout)
        base_bytes = statistics.median(len(b) for b in bases)
        peer_idle = [peer_write(peer_dir, with_exif(bases[n % len(bases)], exif_bytes(200_000 + n)), n)
                     for n in range(PEER_IDLE_RUNS)]

        print()
        line("photos", f"{args.photos} library JPEGs {SEED_SIZE[0]}x{SEED_SIZE[1]} (every 4th portrait, median "
             f"{statistics.median(len(p) for p in library_photos) / MB:.1f} MB) and 4 upload bases "
             f"{UPLOAD_SIZE[0]}x{UPLOAD_SIZE[1]} (median {base_bytes / MB:.1f} MB) made in {make_s:.1f} s")
        line("library", f"uploaded in {upload_s:.1f} s, rendered by the worker {render_s:.1f} s later; "
             f"display JPEGs median {statistics.median(display_sizes) / 1000:.0f} KB "
             f"(max {max(display_sizes) / 1000:.0f} KB)")
        line("slideshows", f"{len(tokens)} of one album, seconds={args.interval}, shuffle; "
             f"{args.tvs} TVs dealt in turn ({math.ceil(args.tvs / len(tokens))} per link at most); "
             f"static files per TV start: {len(static)}")

        # -- the window
        t0 = time.perf_counter() + 0.2
        t_end = t0 + args.seconds
        recorder = Recorder(t0)
        uploader = Uploader(owner, bases, args.upload_via, t_end, args.upload_gap, recorder, stopping, peer_dir)
        threads = [TV(n, server.port, tokens[n % len(tokens)], t0 + n * args.interval / args.tvs, t_end,
                      args.interval, expected, static, recorder, stopping) for n in range(args.tvs)]
        sampler.start()
        for thread in threads:
            thread.start()
        while time.perf_counter() < t0:
            time.sleep(0.001)
        table_start, cpu_start = proc_table(), machine_cpu()
        tree_start = server_tree(server.pid, table_start)
        client_start = resource.getrusage(resource.RUSAGE_SELF)
        main_start = proc_stat(server.pid)[1]
        uploader.start()
        threads.append(uploader)
        for thread in threads:
            while thread.is_alive():
                thread.join(0.5)
        t_stop = time.perf_counter()
        table_end, cpu_end = proc_table(), machine_cpu()
        tree_end = server_tree(server.pid, table_end)
        client_end = resource.getrusage(resource.RUSAGE_SELF)
        main_end = proc_stat(server.pid)[1]
        sampler.stop()
        rendered = render_counts(Path(data_dir) / "picup.db", uploader.media_ids)

        # -- report
        elapsed = t_stop - t0
        server_s = (sum(v[1] for v in tree_end.values()) - sum(v[1] for v in tree_start.values())) / CLK_TCK
        main_s = (main_end - main_start) / CLK_TCK
        client_s = (client_end.ru_utime + client_end.ru_stime) - (client_start.ru_utime + client_start.ru_stime)
        busy = [(b1 - b0) / max(1, t1 - t0_) * 100 for (b0, t0_), (b1, t1) in zip(cpu_start, cpu_end)]
        busy_s = sum(b1 - b0 for (b0, _t0), (b1, _t1) in zip(cpu_start, cpu_end)) / CLK_TCK
        # Everything else on the machine: a process that ended shows up in its parent's reaped-children time.
        others = {}
        for table, tree, sign in ((table_end, tree_end, 1), (table_start, tree_start, -1)):
            for pid, (_ppid, ticks, _start, _nice, name) in table.items():
                if pid not in tree and pid != os.getpid():
                    others[name] = others.get(name, 0) + sign * ticks / CLK_TCK
        others_s = sum(others.values())
        top_others = sorted(others.items(), key=lambda kv: -kv[1])[:3]
        rows = recorder.rows
        errors_by_kind = {}
        for kind, *_rest, status, _late in rows:
            expected_status = {"upload POST /api/v1/uploads": 201, "upload POST /api/v1/media": 201,
                               "upload PATCH (the photo)": 204}.get(kind, 200)
            if status != expected_status:
                errors_by_kind[kind] = errors_by_kind.get(kind, 0) + 1
        photo_kind = "upload POST /api/v1/media" if args.upload_via == "raw" else "upload PATCH (the photo)"
        tv_ms = recorder.ms(*TV_KINDS)
        up_ms = recorder.ms(photo_kind)

        print()
        print(f"  {'latency, ms (first byte sent → answer read)':<44}{'count':>6} {'median':>8} {'p95':>8} "
              f"{'p99':>8} {'max':>8} {'errors':>7}")
        for kind in TV_KINDS:
            stats_row(kind, recorder.ms(kind), errors_by_kind.get(kind, 0))
        stats_row("TV, every request", tv_ms, sum(errors_by_kind.get(k, 0) for k in TV_KINDS))
        if args.upload_via == "tus":
            stats_row("upload POST /api/v1/uploads (create)", recorder.ms("upload POST /api/v1/uploads"),
                      errors_by_kind.get("upload POST /api/v1/uploads", 0))
        stats_row(f"{photo_kind}", up_ms, errors_by_kind.get(photo_kind, 0))
        stats_row("  the same, ms per MB", uploader.per_mb)
        stats_row("peer: write + fsync + SHA-256, idle", [s * 1000 for s in peer_idle])
        stats_row("peer: the same, during the window", [s * 1000 for s in uploader.peer_s])
        late = [row[4] for row in rows if row[0] in TV_KINDS and not math.isnan(row[4])]
        line("TV requests left late (client's own delay)", f"median {statistics.median(late) if late else 0:.1f} ms, "
             f"p99 {pct(late, 99):.1f} ms, max {max(late, default=0):.1f} ms after their due time")
        buckets = []
        for first in range(0, math.ceil(args.seconds), 10):
            inside = [row[2] for row in rows if row[0] in TV_KINDS and first <= row[1] < first + 10]
            buckets.append(f"{first}-{first + 10} s: {pct(inside, 99):.0f}" if inside else f"{first}-{first + 10} s: -")
        line("TV p99 by 10 s of the window (ms)", " · ".join(buckets))
        line("kept-alive connections reopened", f"{Session.reconnects} (the server closed one; retried once, "
             "the retry is inside that request's time)")
        total_mb = sum(uploader.sizes) / MB
        line("uploads", f"{len(uploader.media_ids)} photos, {total_mb:.0f} MB in {elapsed:.1f} s "
             f"({len(uploader.media_ids) / elapsed:.1f} photos/s, {total_mb / elapsed:.1f} MB/s); median "
             f"{statistics.median(uploader.sizes) / MB if uploader.sizes else 0:.1f} MB each")
        line("  rendered by the window's end", f"{rendered.get('ready', 0)} of {len(uploader.media_ids)} "
             f"(pending {rendered.get('pending', 0)}, failed {rendered.get('failed', 0)}): the worker's backlog")
        line("server CPU in the window", f"{server_s:.1f} s in {elapsed:.1f} s = {server_s / elapsed * 100:.0f}% "
             f"of one core, {server_s / elapsed / CORES * 100:.0f}% of {CORES} cores "
             f"({len(tree_end)} processes)")
        line("  main process (waitress, app, ingest)", f"{main_s:.1f} s = {main_s / elapsed * 100:.0f}% "
             "of one core")
        line("  forkserver + photo pool (nice 10)", f"{server_s - main_s:.1f} s = "
             f"{(server_s - main_s) / elapsed * 100:.0f}% of one core: rendering the uploads")
        line("this client's CPU (TVs, uploader, sampler)", f"{client_s:.1f} s = {client_s / elapsed * 100:.0f}% "
             "of one core (same machine: taken from the server's cores)")
        line("each core busy (/proc/stat, whole machine)", " · ".join(f"cpu{n} {b:.0f}%" for n, b in enumerate(busy))
             + f" = {busy_s:.1f} core-seconds")
        line("  of which other processes", f"{others_s:.1f} s, most: " + ", ".join(
             f"{name} {value:.1f} s" for name, value in top_others if value >= 0.05)
             + f"; unattributed (interrupts) {busy_s - server_s - client_s - others_s:.1f} s")
        line("server tree RSS peak (VmRSS summed)", f"{sampler.rss_peak / MiB:.0f} MiB over up to "
             f"{sampler.members_max} processes, for information")
        if up_ms and uploader.peer_s:
            line("photo upload vs peer under load (medians)",
                 f"{statistics.median(up_ms):.0f} ms vs {statistics.median(uploader.peer_s) * 1000:.0f} ms = "
                 f"{statistics.median(up_ms) / (statistics.median(uploader.peer_s) * 1000):.1f}x")

        problems = recorder.errors + recorder.wrong
        print()
        print("Targets")
        tv_p99, up_p99 = pct(tv_ms, 99), pct(up_ms, 99)
        line(f"TV requests p99 < {TARGET_MS:.0f} ms", f"{tv_p99:7.1f} ms   {verdict(tv_p99 < TARGET_MS)}")
        line(f"upload requests p99 < {TARGET_MS:.0f} ms", f"{up_p99:7.1f} ms   {verdict(up_p99 < TARGET_MS)}   "
             f"(the requests carrying a photo; peer p99 {pct(uploader.peer_s, 99) * 1000:.0f} ms)")
        ok = not problems and bool(tv_ms) and bool(up_ms)
        line("every answer as expected, right bytes", f"{'yes' if ok else 'NO':>7}      {'PASS' if ok else 'FAIL'}")
        for text in problems[:10]:
            print(f"    {text}")
        if len(problems) > 10:
            print(f"    … and {len(problems) - 10} more")
        return 0 if ok else 1
    except CannotRun as exc:
        print(f"cannot run: {exc}")
        if server is not None and not server_log_shown:
            print(server.log_tail())
        return 2
    except WrongResult as exc:
        print(f"FAIL: {exc}")
        return 1
    finally:
        stopping.set()
        for thread in threads:
            thread.join(5)
        if sampler is not None:
            sampler.stop()
        if owner is not None:
            owner.close()
        if server is not None:
            server.stop()
            if sampler is not None:
                sampler.kill_leftovers()
        if args.keep:
            print(f"  (kept {workdir})")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tvs", type=int, default=50, help="simulated TVs (default 50)")
    parser.add_argument("--interval", type=int, default=5, help="seconds per slide (default 5)")
    parser.add_argument("--seconds", type=float, default=60, help="the measurement window (default 60)")
    parser.add_argument("--slideshows", type=int, default=5, help="slideshow links the TVs share (default 5)")
    parser.add_argument("--photos", type=int, default=40, help="photos in the slideshows' album (default 40)")
    parser.add_argument("--upload-via", choices=("tus", "raw"), default="tus",
                        help="tus like the web page (default), or raw POST /api/v1/media")
    parser.add_argument("--upload-gap", type=float, default=0, help="seconds between uploads (default 0)")
    parser.add_argument("--render-timeout", type=float, default=300,
                        help="seconds to wait for the library to be rendered (default 300)")
    parser.add_argument("--seed", type=int, default=1, help="random seed of the made-up photos")
    parser.add_argument("--dir", default=None, help="make the work folder here (default: system temp folder)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (data, server log) and print it")
    args = parser.parse_args(argv)
    if args.tvs < 1 or args.interval < 1 or args.seconds <= 0 or args.photos < 2 or args.upload_gap < 0 \
            or not 1 <= args.slideshows <= args.tvs:
        parser.error("--tvs ≥ 1, --interval ≥ 1, --seconds > 0, --photos ≥ 2, --upload-gap ≥ 0, "
                     "1 ≤ --slideshows ≤ --tvs")
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
