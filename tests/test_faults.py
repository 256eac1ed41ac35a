"""Faults Picup survives: "Nothing lost, ever".

``kill -9`` of the web server mid-upload and of the worker mid-rendition, a
disk that fills up, a photo store that is unmounted or has lost its marker,
and uploads, renditions and a database snapshot all at once. Everything is
real: ``picup serve`` and ``picup worker`` processes, SQLite files, encoded
JPEGs and videos, small filesystems (tmpfs and bind mounts, which need root:
the tests run as root, as CI does). docs/faults.md says what each test proves.

The moments are random. Each test prints its seed; a failure replays with
``PICUP_FAULT_SEED=<seed> .venv/bin/python -m pytest tests/test_faults.py -k <test>``.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import io
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import av
import pytest
import requests
from PIL import Image

from picup import db, i18n, storage, worker
from picup import uploads as uploads_module
from picup.storage.local import LocalBlobStore
from tests import media_files
from tests.conftest import LiveServer, make_settings
from tests.waiting import wait_for

PICUP = str(Path(sys.executable).parent / "picup")
TUS = {"Tus-Resumable": "1.0.0"}
OFFSET_TYPE = "application/offset+octet-stream"


# ------------------------------------------------------------------ helpers
@pytest.fixture
def rng(request) -> random.Random:
    """The test's random moments, from a seed that is printed so a failure can be replayed."""
    seed = int(os.environ.get("PICUP_FAULT_SEED") or random.SystemRandom().randrange(2**32))
    print(f"\n{request.node.name}: random seed {seed}  (replay: PICUP_FAULT_SEED={seed})")
    request.node.user_properties.append(("seed", seed))
    return random.Random(seed)


@pytest.fixture
def s3_endpoint():
    """A real S3 server (moto over HTTP) for the backup runs."""
    from tests.moto_server import moto_s3_server

    with moto_s3_server() as endpoint:
        yield endpoint


def env(**extra) -> dict:
    """The environment of a Picup child process: no PICUP_* from outside, plus ``extra``."""
    return {**{k: v for k, v in os.environ.items() if not k.startswith("PICUP_")}, **extra}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def query(database: Path, sql: str, *args) -> list[tuple]:
    with closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30)) as conn:
        return conn.execute(sql, args).fetchall()


def execute(database: Path, sql: str, *args) -> None:
    with closing(sqlite3.connect(database, timeout=30)) as conn:
        with conn:
            conn.execute(sql, args)


def integrity_ok(database: Path) -> bool:
    return query(database, "PRAGMA integrity_check") == [("ok",)]




@contextlib.contextmanager
def tmpfs(mountpoint: Path, size: str):
    """A real filesystem of ``size`` that fills up (needs root, as CI and our machines run)."""
    mountpoint.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mountpoint)],
                            capture_output=True, text=True)
    assert result.returncode == 0, f"this test mounts a small tmpfs and needs root: {result.stderr}"
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], check=True)


def fill(folder: Path) -> Path:
    """Write a ballast file until the disk holding ``folder`` has not one byte left."""
    ballast = folder / "ballast.bin"
    with open(ballast, "wb", buffering=0) as out:
        for block in (1024**2, 4096, 1):
            with contextlib.suppress(OSError):
                while True:
                    out.write(b"\0" * block)
    assert os.statvfs(folder).f_bavail == 0
    return ballast


class Photos:
    """Distinct multi-MiB photos, made fast: a few real noisy JPEGs, each copy carrying its own
    bytes after the end-of-image marker (as phones append data after the picture)."""

    def __init__(self, rng: random.Random, sizes=((2400, 1800), (3200, 2400))):
        self.rng = rng
        self.bases = [media_files.noisy_jpeg(rng.randrange(10**6), size=size) for size in sizes]
        self.made = 0
        self.guard = threading.Lock()

    def next(self) -> bytes:
        with self.guard:
            self.made += 1
            return (self.rng.choice(self.bases) + b"picup-fault-test" + self.made.to_bytes(4, "big")
                    + self.rng.randbytes(61))


def originals_on_disk(store_root: Path) -> dict[str, Path]:
    folder = store_root / "originals"
    return {p.name: p for p in folder.rglob("*") if p.is_file()} if folder.exists() else {}


def files_in(folder: Path, pattern: str = "*") -> list[str]:
    return sorted(p.name for p in folder.glob(pattern)) if folder.exists() else []


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (the pool, the forkserver, video children)."""
    found = []
    with contextlib.suppress(FileNotFoundError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(FileNotFoundError):
                for child in open(f"/proc/{pid}/task/{task}/children").read().split():
                    found += [int(child), *descendants(int(child))]
    return found


def command_line(pid: int) -> str:
    try:
        return open(f"/proc/{pid}/cmdline").read().replace("\0", " ")
    except FileNotFoundError:
        return ""


def is_gone(pid: int) -> bool:
    """Exited (a zombie waiting for init counts as gone)."""
    try:
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


class Process:
    """``picup worker`` (or another command) as a real process, its output in a log file."""

    def __init__(self, args: list[str], log: Path, environ: dict):
        self.log = log
        self.process = subprocess.Popen([PICUP, *args], env=environ, stdout=open(log, "ab"),
                                        stderr=subprocess.STDOUT)
        self.pid = self.process.pid

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self, timeout=60) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                return self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.process.returncode


def start_worker(data: Path, log: Path, **extra) -> Process:
    return Process(["worker", "--data", str(data)], log, env(**extra))


def add_user_and_import(data: Path, folder: Path, **extra) -> None:
    subprocess.run([PICUP, "user", "add", "mom", "--password-stdin", "--data", str(data)], input="correct horse\n",
                   text=True, env=env(**extra), check=True, capture_output=True)
    subprocess.run([PICUP, "import", str(folder), "--user", "mom", "--data", str(data)], env=env(**extra),
                   check=True, capture_output=True)


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def error_of(response) -> tuple[str, str]:
    body = response.json()["error"]
    return body["code"], body["message"]


# ------------------------------------------------ 1. kill -9 of the web server
@dataclass
class Item:
    """One photo a family member is adding, and what the server has acknowledged of it."""

    content: bytes
    via: str  # "raw" (one POST) or "tus" (1 MiB chunks)
    url: str | None = None  # the tus upload, once created
    acked_offset: int = 0  # bytes a 204 acknowledged
    sent_last: bool = False  # the chunk with the last byte went out (its answer may never have come)
    media_id: int | None = None  # set once the whole file was acknowledged
    verified: bool = False  # its original was downloaded and compared since
    busy: bool = False  # an uploader has it in hand

    @property
    def sha256(self) -> str:
        return sha256(self.content)


class Sending(io.RawIOBase):
    """A request body sent at a home network's pace (``rate`` bytes a second); ``done`` is set
    once its last byte went out, when the server starts writing and keeping it."""

    def __init__(self, data: bytes, rate: float, done: threading.Event | None = None):
        self.data, self.rate, self.sent, self.started = data, rate, 0, time.monotonic()
        self.done = done

    def __len__(self) -> int:
        return len(self.data)

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        piece = self.data[self.sent:self.sent + (len(self.data) if size < 0 else size)]
        self.sent += len(piece)
        ahead = self.sent / self.rate - (time.monotonic() - self.started)
        if ahead > 0.005:
            time.sleep(ahead)
        if not piece and self.done is not None:
            self.done.set()
        return piece


class Uploads:
    """Family members adding photos over real HTTP, raw and tus, until the server dies under them."""

    CHUNK = 1024**2

    def __init__(self, photos: Photos, rng: random.Random):
        self.photos = photos
        self.rng = rng
        self.limit = 10**6  # how many photos may be started (the last start only finishes them)
        self.in_flight = 0  # requests on their way right now
        self.body_sent = threading.Event()  # a request body has just been sent in full
        self.items: list[Item] = []
        self.problems: list[str] = []
        self.cut_off: list[str] = []  # how each uploader was cut off
        self.guard = threading.Lock()

    def next_item(self, via: str) -> Item | None:
        with self.guard:
            for item in self.items:
                if item.via == via and item.media_id is None and not item.busy:
                    item.busy = True
                    return item
            if len(self.items) >= self.limit:
                return None
            item = Item(self.photos.next(), via)
            item.busy = True
            self.items.append(item)
            return item

    def body(self, data: bytes) -> Sending:
        with self.guard:
            rate = self.rng.uniform(4, 16) * 1024**2
        return Sending(data, rate, self.body_sent)

    def problem(self, text: str) -> None:
        with self.guard:
            self.problems.append(text)

    def run(self, server: LiveServer, http: requests.Session, via: str) -> None:
        """Upload until there is nothing left or the server is gone."""
        while (item := self.next_item(via)) is not None:
            try:
                (self.raw if via == "raw" else self.tus)(server.url, http, item)
            except requests.RequestException as exc:
                with self.guard:
                    self.cut_off.append(f"{via}: {type(exc).__name__}: {exc}")
                return
            finally:
                item.busy = False

    def send(self, http, method: str, url: str, **kwargs):
        with self.guard:
            self.in_flight += 1
        try:
            return http.request(method, url, timeout=60, **kwargs)
        finally:
            with self.guard:
                self.in_flight -= 1

    def expect(self, response, statuses, item: Item) -> None:
        if response.status_code not in statuses:
            self.problem(f"{item.via} {response.request.method} {response.request.url}: "
                         f"{response.status_code} {response.text[:300]}")
            raise requests.RequestException("unexpected answer")

    def raw(self, base: str, http, item: Item) -> None:
        response = self.send(http, "POST", f"{base}/api/v1/media?filename=raw-{id(item)}.jpg",
                             data=self.body(item.content), headers={"Content-Type": "application/octet-stream"})
        # 200: a retry of a photo whose first try was kept but never answered (killed in between)
        self.expect(response, (200, 201), item)
        item.media_id = response.json()["media"]["id"]

    def tus(self, base: str, http, item: Item) -> None:
        offset = self.resume_offset(base, http, item) if item.url else None
        if offset is None:
            created = http.post(base + "/api/v1/uploads", timeout=60, headers={
                **TUS, "Upload-Length": str(len(item.content)), "Upload-Metadata": f"filename {b64('tus.jpg')}"})
            self.expect(created, (201,), item)
            item.url, item.acked_offset, item.sent_last, offset = created.headers["Location"], 0, False, 0
        if offset == len(item.content):  # complete before the kill; only its answer was lost
            item.media_id = self.finished_media(base, http, item)
            return
        response = None
        while offset < len(item.content):
            piece = item.content[offset:offset + self.CHUNK]
            item.sent_last = offset + len(piece) == len(item.content)
            response = self.send(http, "PATCH", base + item.url, data=self.body(piece), headers={
                **TUS, "Upload-Offset": str(offset), "Content-Type": OFFSET_TYPE})
            self.expect(response, (204,), item)
            offset = item.acked_offset = int(response.headers["Upload-Offset"])
        item.media_id = int(response.headers["Picup-Media-Id"])

    def resume_offset(self, base: str, http, item: Item) -> int | None:
        """Where the server says the upload stands; None when it forgot it (then it starts again)."""
        status = http.head(base + item.url, headers=TUS, timeout=30)
        if status.status_code in (404, 410):
            if not item.sent_last:
                self.problem(f"an upload with {item.acked_offset} acknowledged bytes was forgotten ({item.url})")
            return None  # cut off while it was being kept: the client sends it again
        self.expect(status, (200,), item)
        offset = int(status.headers["Upload-Offset"])
        if offset < item.acked_offset:
            self.problem(f"{item.url}: the server went back to offset {offset} after acknowledging "
                         f"{item.acked_offset}")
        return offset

    def finished_media(self, base: str, http, item: Item) -> int:
        described = http.get(base + item.url, timeout=30).json()["upload"]
        if described["media"] is None:
            self.problem(f"{item.url}: offset says complete but there is no photo")
            raise requests.RequestException("complete without media")
        return described["media"]["id"]


def check_after_restart(server: LiveServer, http, uploads: Uploads, data: Path) -> None:
    """What a restart after kill -9 must find: acknowledged photos whole, nothing half-done."""
    database = data / "picup.db"
    assert integrity_ok(database)
    assert query(database, "SELECT id, status FROM media WHERE status != 'ready'") == [], \
        "a pending row of a killed ingest survived the start"
    rows = dict(query(database, "SELECT sha256, id FROM media"))
    listed = {m["sha256"]: m["id"] for m in http.get(server.url + "/api/v1/media?limit=500").json()["items"]}
    assert listed == rows
    acked = [item for item in uploads.items if item.media_id is not None]
    for item in acked:
        assert listed.get(item.sha256) == item.media_id, f"an acknowledged {item.via} upload is missing"
        if not item.verified:
            original = http.get(f"{server.url}/api/v1/media/{item.media_id}/original")
            assert original.status_code == 200 and sha256(original.content) == item.sha256
            item.verified = True
    # No half blob and no orphan blob: the originals are exactly the photos in the database.
    assert set(originals_on_disk(data / "library")) == set(rows)
    # Temporary files: the start removed every leftover; unfinished tus uploads keep what was acknowledged.
    assert files_in(data / "library" / ".incoming") == [], "temp files of a killed ingest are left in the store"
    assert files_in(data / "tmp", "recv-*") == [], "temp files of a killed raw upload are left"
    unfinished = dict(query(database, "SELECT id, \"offset\" FROM upload WHERE media_id IS NULL"))
    parts = {p.stem: p.stat().st_size for p in (data / "tmp" / "uploads").glob("*.part")}
    assert parts == unfinished, "part files and unfinished uploads disagree (or bytes past the offset are left)"
    for item in uploads.items:  # what tus clients will find when they ask
        if item.via == "tus" and item.url and item.media_id is None:
            status = http.head(server.url + item.url, headers=TUS)
            if status.status_code == 200:
                assert int(status.headers["Upload-Offset"]) >= item.acked_offset, "acknowledged chunks were lost"
            else:
                assert status.status_code in (404, 410) and item.sent_last, "an upload in progress was forgotten"


def test_kill_9_of_the_web_server_mid_upload_loses_nothing_acknowledged(tmp_path, rng):
    rounds = 9
    data = tmp_path / "data"
    uploads = Uploads(Photos(rng), rng)
    moments, cut_mid_request = [], 0
    for round_number in range(rounds):
        server = LiveServer(data, command="serve").start()
        try:
            check_after_restart(server, server.session(), uploads, data)
            threads = [threading.Thread(target=uploads.run, args=(server, server.session(), via), daemon=True)
                       for via in ("raw", "tus", "raw")]
            for thread in threads:
                thread.start()
            if round_number % 2:  # any moment: mostly while bytes are still arriving
                moments.append(f"{rng.uniform(0.1, 1.6):.2f}")
                time.sleep(float(moments[-1]))
            else:  # while the server writes, checks and keeps what it received
                time.sleep(rng.uniform(0.0, 0.5))
                uploads.body_sent.clear()
                uploads.body_sent.wait(timeout=10)
                moments.append(f"sent+{rng.uniform(0.0, 0.06):.3f}")
                time.sleep(float(moments[-1][5:]))
            cut_mid_request += uploads.in_flight > 0
        finally:
            server.process.send_signal(signal.SIGKILL)
            server.process.wait()
        for thread in threads:
            thread.join(timeout=60)
        assert not any(thread.is_alive() for thread in threads)
    print(f"kill moments (s after the uploads began, or after a body was sent): {moments}; "
          f"photos: {len(uploads.items)}; "
          f"rounds cut mid-request: {cut_mid_request}")
    uploads.limit = len(uploads.items)

    # The last start: no kill; every photo not yet acknowledged is sent again or resumed.
    server = LiveServer(data, command="serve").start()
    try:
        http = server.session()
        check_after_restart(server, http, uploads, data)
        threads = [threading.Thread(target=uploads.run, args=(server, server.session(), via), daemon=True)
                   for via in ("raw", "tus", "raw")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert uploads.problems == []
        assert all(item.media_id is not None for item in uploads.items), "an upload could not be finished"
        assert cut_mid_request >= rounds // 2, "too few kills landed while a request was running"
        check_after_restart(server, http, uploads, data)
        assert server.stop() == 0
    finally:
        server.stop()
    # Left: only uploads created by a request whose answer (the upload's address) the kill swallowed.
    # Nobody can resume them; they hold no byte, and the worker's expiry removes them in time.
    database = data / "picup.db"
    known = {item.url.rsplit("/", 1)[-1] for item in uploads.items if item.url}
    unknown = dict(query(database, "SELECT id, \"offset\" FROM upload WHERE media_id IS NULL"))
    assert not known & set(unknown) and set(unknown.values()) <= {0}
    assert sorted(files_in(data / "tmp" / "uploads")) == sorted(f"{u}.part" for u in unknown)
    execute(database, "UPDATE upload SET expires_at = '2000-01-01 00:00:00' WHERE media_id IS NULL")
    settings = make_settings(data)
    db.open_database(settings.database_path)
    with db.connection():
        assert uploads_module.expire(settings) == len(unknown)
    assert files_in(data / "tmp" / "uploads") == [] and files_in(data / "library" / ".incoming") == []
    assert files_in(data / "tmp") == ["uploads"]
    assert integrity_ok(database)


# ---------------------------------------------------- 2. kill -9 of the worker
def test_kill_9_of_the_worker_mid_rendition_and_the_lease_brings_the_task_back(tmp_path, rng):
    rounds = 6  # kills wanted; each lands a random moment (under half a second) after the worker's first claim,
    # so a fast machine still has work left for every round, and a slow one is still mid-rendition
    data, source = tmp_path / "data", tmp_path / "camera"
    source.mkdir()
    photos = Photos(rng, sizes=((2400, 1800), (1600, 1200)))
    for n in range(20):
        (source / f"IMG_{n:04}.jpg").write_bytes(photos.next())
    for n in range(3):  # MPEG-4 Part 2 in AVI: browsers cannot play it, so each needs a web copy
        (source / f"MOV_{n:04}.avi").write_bytes(media_files.video("avi", codec="mpeg4", frames=96 + 12 * n,
                                                                   size=(640, 360)))
    add_user_and_import(data, source)
    database = data / "picup.db"
    originals = dict(query(database, "SELECT id, sha256 FROM media"))
    assert len(originals) == 23 and query(database, "SELECT count(*) FROM task") == [(23,)]

    deferred = []  # tasks whose lease is left running until the end

    def claimed_by_a_live_worker():
        running = query(database, "SELECT id, attempts FROM task WHERE status = 'running' AND lease_until > ?",
                        dt.datetime.now(dt.UTC).replace(tzinfo=None).isoformat(" "))
        return [(task, attempts) for task, attempts in running if task not in deferred]

    kills = []  # (task id, attempts) of each task a kill cut off
    moments = []  # seconds after the first claim of each worker
    current = start_worker(data, tmp_path / "worker-0.log")
    try:
        def all_done():
            left = query(database, "SELECT id FROM task WHERE status != 'done'")
            return not [task for task, in left if task not in deferred]

        def run_out(task):
            execute(database, "UPDATE task SET lease_until = '2000-01-01 00:00:00' WHERE id = ? AND status = 'running'",
                    task)

        round_number = -1
        while len(kills) < rounds and round_number < 3 * rounds:
            round_number += 1
            wait_for(lambda: claimed_by_a_live_worker() or all_done(), 60, "the worker to claim a task")
            if all_done():
                break  # all rendered already (but the deferred): no task left to cut off
            moments.append(round(rng.uniform(0.0, 0.5), 2))
            time.sleep(moments[-1])
            children = [pid for pid in descendants(current.pid) if "multiprocessing" in command_line(pid)]
            incoming_then = set(files_in(data / "library" / ".incoming"))
            killed_pid = current.pid
            current.kill()
            cut = claimed_by_a_live_worker()
            kills += cut
            assert query(database, "SELECT count(*) FROM media WHERE render_status = 'failed'") == [(0,)]
            # The decoding pool goes with the worker; it does not linger for ever as orphans.
            wait_for(lambda: all(is_gone(pid) for pid in children), 15, f"the pool processes {children} to end")
            current = start_worker(data, tmp_path / f"worker-{round_number + 1}.log")
            wait_for(lambda: "worker started" in current.log.read_text(), 30, "the new worker to start")
            # The start removed what the killed worker was writing.
            assert [n for n in files_in(data / "tmp") if f"-pid{killed_pid}-" in n] == []
            assert not incoming_then & set(files_in(data / "library" / ".incoming"))
            others = query(database, "SELECT count(*) FROM task WHERE status = 'queued'")[0][0]
            if round_number == 0 and cut and others:
                # A lease still running is respected: the new worker takes other tasks, not these.
                done = query(database, "SELECT count(*) FROM task WHERE status = 'done'")[0][0]
                wait_for(lambda: query(database, "SELECT count(*) FROM task WHERE status = 'done'")[0][0] > done,
                         60, "the new worker to finish another task")
                assert query(database, f"SELECT id, attempts FROM task WHERE id IN ({','.join('?' * len(cut))}) "
                             "AND status = 'running'", *[task for task, _ in cut]) == cut
            # Ten minutes later the killed worker's leases have run out (moved back here, not waited for). A task
            # cut off three times waits until the end: a fourth kill would rightly give it up as a photo that
            # kills its worker (rendition tasks have 4 attempts), which is not what this test is about.
            for task, attempts in cut:
                if attempts >= 3:
                    deferred.append(task)
                else:
                    run_out(task)
        for task in deferred:
            run_out(task)
        wait_for(lambda: query(database, "SELECT count(*) FROM media WHERE render_status != 'ready'") == [(0,)],
                 180, "the renditions of every photo and video", interval=0.2)
        assert current.stop() == 0
    finally:
        current.stop()
    print(f"kill moments (s after a task was claimed): {moments}; tasks cut off (id, attempts): {kills}")
    assert len(kills) >= rounds // 2, "too few kills landed while a rendition was running"
    tasks = dict(query(database, "SELECT id, status FROM task"))
    assert set(tasks.values()) == {"done"}
    attempts = dict(query(database, "SELECT id, attempts FROM task"))
    for task, before in kills:  # each task a kill cut off was claimed again when its lease ran out
        assert attempts[task] > before
    store = data / "library"
    on_disk = originals_on_disk(store)
    for media_id, digest in originals.items():  # the originals were only ever read
        assert file_sha256(on_disk[digest]) == digest and on_disk[digest].stat().st_mode & 0o777 == 0o444
    for digest, kind, web_video in query(database, "SELECT sha256, kind, web_video FROM media"):
        folder = store / storage.derived_key(digest, "")
        for name in ("thumb.webp", "preview.jpg"):  # whole pictures, never a half-written one
            with Image.open(folder / name) as picture:
                picture.load()
        if kind == "video":
            assert web_video == 1
            with av.open(str(folder / "video.mp4")) as copy:
                assert copy.streams.video[0].codec_context.name == "h264"
                assert sum(1 for _ in copy.decode(video=0)) > 0
    assert [n for n in files_in(data / "tmp") if n.startswith(("render-", "original-"))] == []
    assert files_in(store / ".incoming") == []
    assert integrity_ok(database)


# ------------------------------------------------------------------ 3. disk full
def test_a_full_disk_during_uploads_is_told_plainly_loses_nothing_and_passes_when_room_returns(tmp_path, rng):
    photos = Photos(rng, sizes=((2000, 1500),))
    with tmpfs(tmp_path / "disk", "16m") as disk:  # the whole data folder on one small disk
        data = disk / "data"
        server = LiveServer(data, command="serve").start()
        try:
            http = server.session()
            database = data / "picup.db"
            kept: dict[int, bytes] = {}

            def nothing_half_done():
                assert files_in(data / "tmp", "recv-*") == [] and files_in(data / "library" / ".incoming") == []
                assert query(database, "SELECT count(*) FROM media WHERE status != 'ready'") == [(0,)]
                assert set(originals_on_disk(data / "library")) == {sha256(c) for c in kept.values()}
                for media_id, content in kept.items():
                    original = http.get(f"{server.url}/api/v1/media/{media_id}/original")
                    assert original.status_code == 200 and sha256(original.content) == sha256(content)

            # A resumable upload is under way when the disk fills up.
            big = photos.next() + photos.next()  # two photos' worth: more than will be left
            created = http.post(server.url + "/api/v1/uploads", headers={
                **TUS, "Upload-Length": str(len(big)), "Upload-Metadata": f"filename {b64('big.jpg')}"})
            assert created.status_code == 201
            url, offset = server.url + created.headers["Location"], 0

            def send_chunks(count: int):
                nonlocal offset
                answer = None
                for _ in range(count):
                    if offset == len(big):
                        break
                    answer = http.patch(url, data=big[offset:offset + 256 * 1024], headers={
                        **TUS, "Upload-Offset": str(offset), "Content-Type": OFFSET_TYPE})
                    if answer.status_code != 204:
                        break
                    offset = int(answer.headers["Upload-Offset"])
                return answer

            assert send_chunks(2).status_code == 204 and offset == 512 * 1024

            # Photos until the disk is full: then a plain answer in the reader's language.
            refused = None
            for _ in range(20):
                content = photos.next()
                response = http.post(server.url + "/api/v1/media?filename=beach.jpg", data=content,
                                     headers={"Accept-Language": "ko"})
                if response.status_code != 201:
                    refused = response
                    break
                kept[response.json()["media"]["id"]] = content
            assert refused is not None and len(kept) >= 4
            assert refused.status_code == 507
            assert error_of(refused) == ("storage_full", i18n.translate("errors.storage_full", "ko"))
            english = http.post(server.url + "/api/v1/media?filename=beach.jpg", data=photos.next(),
                                headers={"Accept-Language": "en"})
            assert english.status_code == 507
            assert error_of(english) == ("storage_full", i18n.translate("errors.storage_full", "en"))
            assert "disk is full" in error_of(english)[1]
            nothing_half_done()

            # The resumable upload meets the full disk: it keeps exactly what was acknowledged.
            answer = send_chunks(len(big))
            assert answer.status_code == 507 and error_of(answer)[0] == "storage_full"
            assert 512 * 1024 <= offset < len(big)
            assert http.head(url, headers=TUS).headers["Upload-Offset"] == str(offset)
            assert [p.stat().st_size for p in (data / "tmp" / "uploads").glob("*.part")] == [offset]
            assert (data / "tmp" / "uploads" / f"{url.rsplit('/', 1)[1]}.part").read_bytes() == big[:offset]
            nothing_half_done()

            # Full to the last byte (something else filled it): photos can still be seen, also by a
            # family member last seen more than a few minutes ago (the sign-in's bookkeeping waits).
            execute(database, "UPDATE session SET last_seen_at = '2000-01-01 00:00:00'")
            ballast = fill(disk)
            assert http.get(server.url + "/api/v1/media").status_code == 200
            some_id, some_content = next(iter(kept.items()))
            seen = http.get(f"{server.url}/api/v1/media/{some_id}/original")
            assert seen.status_code == 200 and seen.content == some_content
            last_byte = http.post(server.url + "/api/v1/media?filename=tiny.jpg", data=media_files.jpeg("teal"))
            assert last_byte.status_code == 507 and error_of(last_byte)[0] == "storage_full"
            nothing_half_done()

            # Room again, without a restart: the ballast goes, and two photos are deleted for good.
            ballast.unlink()
            for gone_id in list(kept)[:2]:
                assert http.delete(f"{server.url}/api/v1/media/{gone_id}").status_code == 200
                assert http.delete(f"{server.url}/api/v1/trash/{gone_id}").status_code == 204
                del kept[gone_id]
            small = media_files.jpeg("olive")
            again = http.post(server.url + "/api/v1/media?filename=small.jpg", data=small)
            assert again.status_code == 201
            kept[again.json()["media"]["id"]] = small
            content = photos.next()
            fits = http.post(server.url + "/api/v1/media?filename=fits.jpg", data=content)
            assert fits.status_code == 201, fits.text
            kept[fits.json()["media"]["id"]] = content
            # A bigger disk (the admin grew it): the resumable upload goes on where it stopped.
            subprocess.run(["mount", "-o", "remount,size=48m", str(disk)], check=True)
            answer = send_chunks(len(big))
            assert answer.status_code == 204 and offset == len(big), answer.text
            kept[int(answer.headers["Picup-Media-Id"])] = big
            nothing_half_done()
            assert len(http.get(server.url + "/api/v1/media").json()["items"]) == len(kept)
            assert server.stop() == 0
            assert integrity_ok(database)
        finally:
            server.stop()


def test_a_full_disk_during_renditions_waits_for_room_and_never_calls_the_photo_unreadable(tmp_path, rng):
    photos = Photos(rng, sizes=((2000, 1500),))
    source = tmp_path / "camera"
    source.mkdir()
    contents = [photos.next() for _ in range(3)]
    for n, content in enumerate(contents):
        (source / f"IMG_{n}.jpg").write_bytes(content)
    data = tmp_path / "data"  # the database stays on the local disk; the photos live on a small one
    with tmpfs(tmp_path / "nas", "16m") as disk:
        store = disk / "library"
        add_user_and_import(data, source, PICUP_STORAGE_PATH=str(store))
        database = data / "picup.db"
        ballast = fill(disk)
        current = start_worker(data, tmp_path / "worker.log", PICUP_STORAGE_PATH=str(store))
        try:
            tried = "SELECT count(*) FROM task WHERE status = 'queued' AND attempts >= 1"
            wait_for(lambda: query(database, tried) == [(3,)], 60, "three failed tries")
            reasons = [error for (error,) in query(database, "SELECT last_error FROM task")]
            assert all(r.startswith("DiskFull: no room to write the renditions, the disk is full") for r in reasons)
            assert query(database, "SELECT DISTINCT render_status FROM media") == [("pending",)]
            assert not (store / "derived").exists() or [p for p in (store / "derived").rglob("*") if p.is_file()] == []
            assert files_in(store / ".incoming") == []

            # One task runs out of tries (the backoff moved forward, not waited for): the photo is not
            # marked unreadable, it waits; the administrator sees why.
            task_id, media_id = query(database, "SELECT t.id, m.id FROM task t JOIN media m "
                                                "ON json_extract(t.payload, '$.media_id') = m.id ORDER BY t.id")[0]
            while query(database, "SELECT status FROM task WHERE id = ?", task_id) != [("failed",)]:
                attempts = query(database, "SELECT attempts FROM task WHERE id = ?", task_id)[0][0]
                execute(database, "UPDATE task SET run_after = '2000-01-01 00:00:00' WHERE id = ? "
                        "AND status = 'queued'", task_id)
                wait_for(lambda: query(database, "SELECT attempts, status FROM task WHERE id = ?", task_id)[0]
                         not in [(attempts, "queued"), (attempts + 1, "running")], 30, "the next try")
            assert query(database, "SELECT render_status, render_error FROM media WHERE id = ?", media_id) == [
                ("pending", None)]
            listing = subprocess.run([PICUP, "tasks", "--data", str(data)], env=env(PICUP_STORAGE_PATH=str(store)),
                                     capture_output=True, text=True, check=True).stdout
            assert f"{task_id:>6}" in listing and "the disk is full" in listing

            # Room again: the queued tries go through without a restart, the given-up one on a retry.
            ballast.unlink()
            execute(database, "UPDATE task SET run_after = '2000-01-01 00:00:00' WHERE status = 'queued'")
            subprocess.run([PICUP, "tasks", "--retry", str(task_id), "--data", str(data)],
                           env=env(PICUP_STORAGE_PATH=str(store)), check=True, capture_output=True)
            wait_for(lambda: query(database, "SELECT DISTINCT render_status FROM media") == [("ready",)], 60,
                     "the renditions once there is room")
            assert current.stop() == 0
        finally:
            current.stop()
        on_disk = originals_on_disk(store)
        assert sorted(on_disk) == sorted(sha256(c) for c in contents)
        for content in contents:
            assert on_disk[sha256(content)].read_bytes() == content
            with Image.open(store / storage.derived_key(sha256(content), "thumb.webp")) as thumb:
                thumb.load()
        assert files_in(store / ".incoming") == [] and integrity_ok(database)


# ------------------------------------------------- 4. a store that is not there
def test_an_unmounted_store_or_a_missing_marker_stops_uploads_and_deletion_and_readyz_says_why(tmp_path):
    disk, mountpoint, data = tmp_path / "nas-disk", tmp_path / "nas", tmp_path / "data"
    disk.mkdir()
    mountpoint.mkdir()
    subprocess.run(["mount", "--bind", str(disk), str(mountpoint)], check=True)
    mounted = True
    server = LiveServer(data, command="serve", env={"PICUP_STORAGE_PATH": str(mountpoint)}).start()
    try:
        http = server.session()
        first, second = media_files.noisy_jpeg(1), media_files.noisy_jpeg(2)
        kept = http.post(server.url + "/api/v1/media?filename=a.jpg", data=first).json()["media"]
        binned = http.post(server.url + "/api/v1/media?filename=b.jpg", data=second).json()["media"]
        assert http.delete(f"{server.url}/api/v1/media/{binned['id']}").status_code == 200
        blob = mountpoint / storage.blob_key(binned["sha256"])
        marker = mountpoint / storage.MARKER_NAME

        def refuses_everything(why: str):
            ready = requests.get(server.url + "/readyz")
            assert ready.status_code == 503 and ready.json()["status"] == "unavailable"
            assert why in ready.json()["checks"]["store"] and str(mountpoint) in ready.json()["checks"]["store"]
            upload = http.post(server.url + "/api/v1/media?filename=c.jpg", data=media_files.noisy_jpeg(3))
            assert upload.status_code == 503
            assert error_of(upload) == ("storage_unavailable", i18n.translate("errors.storage_unavailable", "en"))
            forever = http.delete(f"{server.url}/api/v1/trash/{binned['id']}")
            assert forever.status_code == 503 and error_of(forever)[0] == "storage_unavailable"
            assert [m["id"] for m in http.get(server.url + "/api/v1/trash").json()["items"]] == [binned["id"]]
            # The worker's purge refuses too (the same database, the trash period long over).
            execute(data / "picup.db", "UPDATE media SET trashed_at = '2000-01-01 00:00:00' WHERE id = ?",
                    binned["id"])
            settings = make_settings(data, storage_path=str(mountpoint))
            db.open_database(settings.database_path)
            with pytest.raises(storage.StoreUnavailable, match=re.escape(why)):
                worker.purge_trash(LocalBlobStore(settings.storage_root), settings)
            execute(data / "picup.db", "UPDATE media SET trashed_at = datetime('now') WHERE id = ?", binned["id"])

        # The share is unmounted under a running server: an empty folder, not an empty library.
        subprocess.run(["umount", str(mountpoint)], check=True)
        mounted = False
        refuses_everything("is the disk or share mounted?")
        assert list(mountpoint.iterdir()) == [], "nothing is written into the empty mount point"
        for command in ("serve", "worker"):
            refused = subprocess.run([PICUP, command, "--data", str(data)], capture_output=True, text=True, timeout=60,
                                     env=env(PICUP_STORAGE_PATH=str(mountpoint), PICUP_PORT="1"))
            assert refused.returncode == 1
            assert f"Picup will not start: the photo store LocalBlobStore('{mountpoint}') has no " \
                   f"{storage.MARKER_NAME} marker: is the disk or share mounted?" in refused.stderr

        subprocess.run(["mount", "--bind", str(disk), str(mountpoint)], check=True)
        mounted = True
        assert requests.get(server.url + "/readyz").status_code == 200
        assert blob.exists()

        # The marker is removed (read-only: chmod first) with the share mounted.
        saved = marker.read_text()
        marker.chmod(0o644)
        marker.unlink()
        refuses_everything("is the disk or share mounted?")
        assert blob.exists()
        marker.write_text(saved)
        marker.chmod(0o444)
        assert requests.get(server.url + "/readyz").json() == {"status": "ok",
                                                               "checks": {"database": "ok", "store": "ok"}}
        assert http.delete(f"{server.url}/api/v1/trash/{binned['id']}").status_code == 204
        assert not blob.exists()
        assert http.post(server.url + "/api/v1/media?filename=c.jpg", data=media_files.noisy_jpeg(3)).status_code \
            == 201
        original = http.get(f"{server.url}/api/v1/media/{kept['id']}/original")
        assert original.content == first
        assert server.stop() == 0
    finally:
        server.stop()
        if mounted:
            subprocess.run(["umount", "-l", str(mountpoint)], check=True)


# ------------------------------------------------------------ 5. all at once
def _backup_alongside(data: Path, endpoint: str, stop: threading.Event, problems: list[str]) -> int:
    """Real ``picup backup`` runs, one after another, to a real S3 server (moto over HTTP)
    while uploads and renditions go on: each takes an online snapshot of the live database,
    sends the new originals, and records its run in the database beside the writers."""
    bucket = f"faults-{os.getpid()}"
    from minio import Minio

    from tests.moto_server import ACCESS_KEY, REGION, SECRET_KEY

    Minio(endpoint=endpoint, access_key=ACCESS_KEY, secret_key=SECRET_KEY, secure=False,
          region=REGION).make_bucket(bucket_name=bucket)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("PICUP_")},
           "PICUP_BACKUP_ENDPOINT": endpoint, "PICUP_BACKUP_BUCKET": bucket, "PICUP_BACKUP_SECURE": "false",
           "PICUP_BACKUP_ACCESS_KEY": ACCESS_KEY, "PICUP_BACKUP_SECRET_KEY": SECRET_KEY,
           "PICUP_BACKUP_REGION": REGION}
    runs = 0
    while not stop.is_set():
        done = subprocess.run([str(Path(sys.executable).parent / "picup"), "backup", "--data", str(data)],
                              env=env, capture_output=True, text=True, timeout=300)
        if done.returncode != 0 or "database is locked" in done.stdout + done.stderr:
            problems.append(f"backup run {runs}: exit {done.returncode}: {done.stderr[-500:]}")
        runs += 1
        stop.wait(0.2)
    return runs


def test_uploads_renditions_and_a_backup_at_once_never_show_database_is_locked(tmp_path, rng, s3_endpoint):
    seconds = 20
    data = tmp_path / "data"
    photos = Photos(rng, sizes=((1600, 1200), (1200, 900)))
    server = LiveServer(data, command="serve").start()
    current = start_worker(data, tmp_path / "worker.log")
    stop = threading.Event()
    answers: list[tuple[int, str, str]] = []
    problems: list[str] = []
    acked: dict[int, str] = {}
    guard = threading.Lock()

    def record(response, what: str) -> None:
        with guard:
            answers.append((response.status_code, what, response.text[:300]))

    def guarded(fn):
        """A thread that fails the test when it breaks (pytest would only warn)."""
        def run(http):
            try:
                fn(http)
            except Exception as exc:  # noqa: BLE001 - reported, not swallowed
                with guard:
                    problems.append(f"{fn.__name__}: {type(exc).__name__}: {exc}")
        return run

    def body(data: bytes) -> Sending:  # a home network's pace, so the worker can keep up
        with guard:
            return Sending(data, rng.uniform(2, 8) * 1024**2)

    @guarded
    def raw(http):
        while not stop.is_set():
            content = photos.next()
            response = http.post(server.url + "/api/v1/media?filename=raw.jpg", data=body(content), timeout=120)
            record(response, "raw upload")
            if response.status_code == 201:
                with guard:
                    acked[response.json()["media"]["id"]] = sha256(content)

    @guarded
    def tus(http):
        while not stop.is_set():
            content = photos.next()
            created = http.post(server.url + "/api/v1/uploads", timeout=120, headers={
                **TUS, "Upload-Length": str(len(content)), "Upload-Metadata": f"filename {b64('tus.jpg')}"})
            record(created, "tus create")
            offset, response = 0, None
            while created.status_code == 201 and offset < len(content):
                response = http.patch(server.url + created.headers["Location"], timeout=120,
                                      data=body(content[offset:offset + 256 * 1024]),
                                      headers={**TUS, "Upload-Offset": str(offset), "Content-Type": OFFSET_TYPE})
                record(response, "tus chunk")
                if response.status_code != 204:
                    break
                offset = int(response.headers["Upload-Offset"])
            if response is not None and response.status_code == 204 and offset == len(content):
                with guard:
                    acked[int(response.headers["Picup-Media-Id"])] = sha256(content)

    @guarded
    def look(http):
        while not stop.is_set():
            page = http.get(server.url + "/api/v1/media?limit=50", timeout=120)
            record(page, "timeline")
            for item in page.json().get("items", [])[:5] if page.status_code == 200 else []:
                record(http.get(server.url + item["urls"]["thumb"], timeout=120), "thumbnail")
            stop.wait(0.1)

    backup_result: list[int] = []
    threads = [threading.Thread(target=fn, args=(server.session(),), daemon=True) for fn in (raw, raw, tus, look)]
    threads.append(threading.Thread(target=lambda: backup_result.append(
        _backup_alongside(data, s3_endpoint, stop, problems)), daemon=True))
    try:
        for thread in threads:
            thread.start()
        time.sleep(seconds)
        stop.set()
        for thread in threads:
            thread.join(timeout=120)
        assert not any(thread.is_alive() for thread in threads)
        database = data / "picup.db"
        rendered = query(database, "SELECT count(*) FROM media WHERE render_status = 'ready'")[0][0]
        print(f"{len(answers)} answers, {len(acked)} photos added, {rendered} rendered meanwhile, "
              f"{backup_result} backup runs")
        server_errors = [a for a in answers if a[0] >= 500 or "database is locked" in a[2]]
        assert server_errors == []
        assert {status for status, _what, _text in answers} <= {200, 201, 204, 404}
        assert all(what == "thumbnail" for status, what, _text in answers if status == 404), "only not-yet thumbs"
        assert problems == [] and backup_result[0] >= 2, "backups ran to the end beside the uploads"
        assert len(acked) >= 20 and rendered >= 10
        # The worker catches up, and no task ever failed on a locked database.
        wait_for(lambda: query(database, "SELECT count(*) FROM media WHERE render_status != 'ready'") == [(0,)],
                 240, "the worker to render every photo", interval=0.5)
        assert query(database, "SELECT count(*) FROM task WHERE status != 'done' OR last_error IS NOT NULL") == [(0,)]
        assert dict(query(database, "SELECT id, sha256 FROM media")) == acked
        for log in (server.log, current.log):
            assert "database is locked" not in log.read_text()
        assert current.stop() == 0 and server.stop() == 0
        assert integrity_ok(database)
    finally:
        stop.set()
        current.stop()
        server.stop()
