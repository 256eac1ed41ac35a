"""Upload benchmark: one big file through tus + waitress, beside `cp` of the same file.

Starts the real server (`picup run`) as a subprocess on a free loopback port
with its data in a temporary folder, creates the first account, then sends
one file (1 GiB by default) with the tus 1.0 protocol in fixed-size PATCH
chunks, streaming from disk (``socket.sendfile``; the client never holds the
file in memory). In the same run, `cp` copies the same file into the same
filesystem; the ratio of the two throughputs is the figure that matters,
because the machine is shared and absolute numbers drift from run to run.

While the upload runs, the server's resident memory (VmRSS in
``/proc/<pid>/status``) is sampled every ~50 ms; the growth from just before
the first request to the peak must stay small whatever the file size
(design principle 5: stream, never buffer). The stored original is then
downloaded through the API and its SHA-256 compared with the source's.

    .venv/bin/python bench/upload.py                 # 1 GiB, 64 MiB chunks
    .venv/bin/python bench/upload.py --size 256 --chunk 16

Nothing is asserted: the script prints figures and PASS/MISS per target. It
exits non-zero only when the benchmark could not run or the stored bytes
differ from the source (that is a bug, not a slow machine).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import http.client
import io
import json
import os
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from http.cookies import SimpleCookie
from pathlib import Path

from picup_server import Server  # bench/, on the path when run as a script

MiB = 1024 * 1024
TARGET_RATIO = 0.5  # upload throughput / cp throughput
TARGET_RSS_GROWTH_MIB = 64  # server RSS growth, before upload -> peak during it
SAMPLE_EVERY = 0.05  # seconds between RSS samples


# ----------------------------------------------------------------- helpers
def human_rate(nbytes: int, seconds: float) -> str:
    return f"{nbytes / MiB / seconds:8.1f} MiB/s" if seconds > 0 else "       ∞ MiB/s"


def make_source(path: Path, size: int) -> str:
    """A file that starts with a real JPEG and is padded with varied filler; returns its SHA-256.

    The filler repeats one random 1 MiB block with a counter written into the
    head of each copy, so no two MiB are alike and it is written at disk speed.
    """
    from PIL import Image

    image = Image.effect_noise((320, 240), 64).convert("RGB")
    head = io.BytesIO()
    image.save(head, "JPEG", quality=85)
    jpeg = head.getvalue()
    if size < len(jpeg):
        raise SystemExit(f"--size is smaller than the {len(jpeg)}-byte JPEG head")
    digest = hashlib.sha256(jpeg)
    block = bytearray(os.urandom(MiB))
    left = size - len(jpeg)
    counter = 0
    with open(path, "wb", buffering=0) as out:
        out.write(jpeg)
        while left:
            struct.pack_into("<Q", block, 0, counter)
            piece = memoryview(block)[: min(left, MiB)]
            out.write(piece)
            digest.update(piece)
            left -= len(piece)
            counter += 1
    return digest.hexdigest()


def sha256_of(stream, chunk: int = 4 * MiB) -> tuple[str, int]:
    digest = hashlib.sha256()
    total = 0
    while data := stream.read(chunk):
        digest.update(data)
        total += len(data)
    return digest.hexdigest(), total


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of ``pid`` in bytes (empty when the process is gone)."""
    values = {}
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    key, amount, _unit = line.split()
                    values[key.rstrip(":")] = int(amount) * 1024
    except (FileNotFoundError, ProcessLookupError):
        pass
    return values


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds the process has used so far."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class RssSampler(threading.Thread):
    """Samples VmRSS of a process every ``SAMPLE_EVERY`` seconds until stopped."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid = pid
        self.samples: list[tuple[float, int]] = []
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            rss = proc_status(self.pid).get("VmRSS")
            if rss is not None:
                self.samples.append((time.perf_counter(), rss))
            self._stop_event.wait(SAMPLE_EVERY)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()

    def peak(self, start: float, end: float) -> int:
        inside = [rss for moment, rss in self.samples if start <= moment <= end]
        return max(inside) if inside else 0


# ------------------------------------------------------------------ client
class Client:
    """A tiny keep-alive HTTP client on http.client with Picup's session cookie and CSRF token."""

    def __init__(self, port: int):
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        self.cookie = ""
        self.csrf = ""

    def _headers(self, extra: dict | None = None) -> dict:
        headers = {}
        if self.cookie:
            headers["Cookie"] = self.cookie
        if self.csrf:
            headers["X-CSRF-Token"] = self.csrf
        headers.update(extra or {})
        return headers

    def request(self, method: str, path: str, body=None, headers: dict | None = None):
        self.conn.request(method, path, body=body, headers=self._headers(headers))
        response = self.conn.getresponse()
        data = response.read()
        return response, data

    def setup(self, username: str, password: str) -> None:
        body = json.dumps({"username": username, "password": password})
        response, data = self.request("POST", "/api/v1/setup", body, {"Content-Type": "application/json"})
        if response.status != 201:
            raise RuntimeError(f"setup answered {response.status}: {data[:300]!r}")
        self.csrf = json.loads(data)["csrf_token"]
        jar = SimpleCookie()
        for header, value in response.getheaders():
            if header.lower() == "set-cookie":
                jar.load(value)
        self.cookie = "; ".join(f"{key}={morsel.value}" for key, morsel in jar.items())

    def patch_from_file(self, path: str, fh, offset: int, count: int) -> tuple:
        """PATCH ``count`` bytes of ``fh`` at ``offset``; returns (response, body, t_sent, t_answered)."""
        self.conn.putrequest("PATCH", path)
        headers = self._headers({
            "Tus-Resumable": "1.0.0",
            "Upload-Offset": str(offset),
            "Content-Type": "application/offset+octet-stream",
            "Content-Length": str(count),
        })
        for name, value in headers.items():
            self.conn.putheader(name, value)
        self.conn.endheaders()
        sent = self.conn.sock.sendfile(fh, offset=offset, count=count)
        if sent != count:
            raise RuntimeError(f"sent {sent} of {count} bytes")
        t_sent = time.perf_counter()
        response = self.conn.getresponse()
        data = response.read()
        return response, data, t_sent, time.perf_counter()

    def download_sha256(self, path: str) -> tuple[str, int, int]:
        self.conn.request("GET", path, headers=self._headers())
        response = self.conn.getresponse()
        if response.status != 200:
            raise RuntimeError(f"GET {path} answered {response.status}: {response.read()[:300]!r}")
        digest, total = sha256_of(response)
        return digest, total, response.status

    def close(self) -> None:
        self.conn.close()


# --------------------------------------------------------------- the bench
def time_cp(source: Path, target: Path) -> tuple[float, float]:
    """(cp seconds, cp + sync seconds); `sync` runs before timing so both start clean."""
    os.sync()
    started = time.perf_counter()
    subprocess.run(["cp", str(source), str(target)], check=True)
    copied = time.perf_counter()
    os.sync()
    synced = time.perf_counter()
    return copied - started, synced - started


def run(args) -> int:
    size = args.size * MiB
    chunk = args.chunk * MiB
    workdir = Path(tempfile.mkdtemp(prefix="picup-bench-upload-", dir=args.dir))
    server = None
    sampler = None
    client = None
    try:
        data_dir = workdir / "data"
        spool_dir = workdir / "spool"
        data_dir.mkdir()
        spool_dir.mkdir()
        source = workdir / "source.jpg"
        print(f"Picup upload benchmark: {args.size} MiB file, tus PATCH chunks of {args.chunk} MiB, "
              f"loopback through waitress")
        print(f"  work folder {workdir} (filesystem of {args.dir or tempfile.gettempdir()})")
        started = time.perf_counter()
        source_sha = make_source(source, size)
        print(f"  made the source file in {time.perf_counter() - started:.1f} s; sha256 {source_sha[:16]}…")
        print("  page cache is not dropped: the source is warm in cache for both cp and the upload; "
              "`sync` runs before each timing")

        # -- the peer: cp into the same filesystem
        cp_times = []
        for _ in range(args.cp_runs):
            target = data_dir / "cp-copy"
            cp_times.append(time_cp(source, target))
            target.unlink()
        cp_s = statistics.median(t[0] for t in cp_times)
        cp_sync_s = statistics.median(t[1] for t in cp_times)

        # -- the floor: every byte of an upload is hashed with SHA-256 (content addressing),
        # so no upload can be faster than hashing the file once, here, in this process
        hash_started = time.perf_counter()
        with open(source, "rb") as fh:
            sha256_of(fh)
        hash_s = time.perf_counter() - hash_started

        # -- the server
        server = Server(data_dir, workdir / "server.log", env={"TMPDIR": str(spool_dir)})  # waitress spools bodies there
        server.wait_ready()
        client = Client(server.port)
        client.setup("bench", "bench-password-123")
        # Warm the upload route once with a tiny request so imports and first-use costs are not counted.
        client.request("OPTIONS", "/api/v1/uploads")
        time.sleep(0.5)

        os.sync()  # like before cp: start from clean dirty-page state
        sampler = RssSampler(server.pid)
        sampler.start()
        time.sleep(0.3)
        before = proc_status(server.pid)
        cpu_before = cpu_seconds(server.pid)

        # -- the upload: first POST to final PATCH answered
        t0 = time.perf_counter()
        metadata = f"filename {base64.b64encode(b'bench-upload.jpg').decode()}"
        response, body = client.request("POST", "/api/v1/uploads", headers={
            "Tus-Resumable": "1.0.0",
            "Upload-Length": str(size),
            "Upload-Metadata": metadata,
            "Content-Length": "0",
        })
        if response.status != 201:
            raise RuntimeError(f"POST /api/v1/uploads answered {response.status}: {body[:300]!r}")
        location = response.getheader("Location")
        t_created = time.perf_counter()
        patches = []  # (bytes, t_begin, t_sent, t_answered)
        media_id = None
        offset = 0
        with open(source, "rb") as fh:
            while offset < size:
                count = min(chunk, size - offset)
                t_begin = time.perf_counter()
                response, body, t_sent, t_answered = client.patch_from_file(location, fh, offset, count)
                if response.status != 204:
                    raise RuntimeError(f"PATCH at {offset} answered {response.status}: {body[:300]!r}\n"
                                       f"{server.log_tail()}")
                new_offset = int(response.getheader("Upload-Offset"))
                if new_offset != offset + count:
                    raise RuntimeError(f"server offset {new_offset}, expected {offset + count}")
                patches.append((count, t_begin, t_sent, t_answered))
                offset = new_offset
                media_id = response.getheader("Picup-Media-Id") or media_id
        t1 = time.perf_counter()
        cpu_after = cpu_seconds(server.pid)
        time.sleep(0.2)  # let the sampler see the state right after the last answer
        after = proc_status(server.pid)
        upload_peak = sampler.peak(t0, time.perf_counter())
        if not media_id:
            raise RuntimeError("the final PATCH did not answer Picup-Media-Id")

        # -- verification: download the stored original through the API, and look at the blob file
        t_dl = time.perf_counter()
        stored_sha, stored_size, _status = client.download_sha256(f"/api/v1/media/{media_id}/original")
        dl_s = time.perf_counter() - t_dl
        download_peak = sampler.peak(t_dl, time.perf_counter())
        sampler.stop()
        blob = data_dir / "library" / "originals" / source_sha[:2] / source_sha[2:4] / source_sha
        blob_ok = blob.is_file() and blob.stat().st_size == size
        leftovers = [p.name for p in (data_dir / "tmp" / "uploads").glob("*")] if (
            data_dir / "tmp" / "uploads").is_dir() else []

        # -- report
        upload_s = t1 - t0
        ratio = cp_s / upload_s  # same bytes: throughput ratio upload/cp = time ratio cp/upload
        ratio_sync = cp_sync_s / upload_s
        growth = upload_peak - before.get("VmRSS", 0)
        sends = [t_sent - t_begin for _n, t_begin, t_sent, _a in patches]
        answers = [t_answered - t_sent for _n, _b, t_sent, t_answered in patches]
        last_send, last_answer = sends[-1], answers[-1]
        same = stored_sha == source_sha and stored_size == size
        line = lambda label, text: print(f"  {label:<38}{text}")  # noqa: E731
        print()
        line(f"cp, same filesystem (median of {len(cp_times)})",
             f"{cp_s:7.2f} s {human_rate(size, cp_s)}   runs: "
             + ", ".join(f"{c:.2f}" for c, _s in cp_times) + " s")
        line("cp + sync (median)", f"{cp_sync_s:7.2f} s {human_rate(size, cp_sync_s)}")
        line("SHA-256 of the source, in-process", f"{hash_s:7.2f} s {human_rate(size, hash_s)}   "
             f"(hashing alone reaches {cp_s / hash_s:.2f}× cp: no upload can do better)")
        line("tus upload, first POST → last PATCH", f"{upload_s:7.2f} s {human_rate(size, upload_s)}   "
             f"({len(patches)} PATCHes of ≤ {args.chunk} MiB + 1 POST)")
        line("  POST (create)", f"{t_created - t0:7.2f} s")
        line("  bodies sent, client → waitress", f"{sum(sends):7.2f} s {human_rate(size, sum(sends))}   "
             "(waitress receives and spools each body to TMPDIR)")
        if len(answers) > 1:
            line("  body sent → answered, non-final", f"{sum(answers[:-1]):7.2f} s   ({len(answers) - 1} chunks, "
                 f"median {statistics.median(answers[:-1]) * 1000:.0f} ms each: the app reads the spool, "
                 "hashes, writes, fsyncs)")
        line("  final PATCH", f"{last_send + last_answer:7.2f} s   (send {last_send:.2f} s, then "
             f"{last_answer:.2f} s to answer: chunk + ingest: sniff, probe, fsync, rename, re-hash of the blob)")
        line("  server CPU during the upload", f"{cpu_after - cpu_before:7.2f} s   (user + system, all threads)")
        line("download, GET /original", f"{dl_s:7.2f} s {human_rate(stored_size, dl_s)}")
        line("stored original", f"SHA-256 {stored_sha[:16]}… {'matches' if same else 'DIFFERS FROM'} the source "
             f"({stored_size} bytes); blob file {'present' if blob_ok else 'MISSING'}; "
             f"part files left: {len(leftovers)}")
        line("server RSS before the upload", f"{before.get('VmRSS', 0) / MiB:7.1f} MiB")
        line("server RSS peak during upload", f"{upload_peak / MiB:7.1f} MiB   (growth {growth / MiB:.1f} MiB; "
             f"{after.get('VmRSS', 0) / MiB:.1f} MiB after; VmHWM {before.get('VmHWM', 0) / MiB:.1f} → "
             f"{after.get('VmHWM', 0) / MiB:.1f} MiB)")
        line("server RSS peak during download", f"{download_peak / MiB:7.1f} MiB   "
             f"({len(sampler.samples)} samples in all, every {SAMPLE_EVERY * 1000:.0f} ms)")
        line("upload/(cp + sync) ratio", f"{ratio_sync:7.2f}     (for information: cp alone leaves its bytes "
             "in the page cache, the upload fsyncs every chunk)")
        line("upload/SHA-256 ratio", f"{hash_s / upload_s:7.2f}     (for information: the share of the time "
             "a single hashing pass would take)")
        print()
        print("Targets")
        verdict = lambda ok: "PASS" if ok else "MISS"  # noqa: E731
        line(f"upload/cp throughput ≥ {TARGET_RATIO:.2f}", f"{ratio:7.2f}       {verdict(ratio >= TARGET_RATIO)}")
        line(f"server RSS growth < {TARGET_RSS_GROWTH_MIB} MiB",
             f"{growth / MiB:7.1f} MiB   {verdict(growth < TARGET_RSS_GROWTH_MIB * MiB)}")
        line("stored original = source (SHA-256)", f"{'yes' if same and blob_ok else 'NO':>7}       "
             f"{'PASS' if same and blob_ok else 'FAIL'}")
        return 0 if same and blob_ok else 1
    finally:
        if sampler is not None and sampler.is_alive():
            sampler.stop()
        if client is not None:
            client.close()
        if server is not None:
            server.stop()
        if args.keep:
            print(f"  (kept {workdir})")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=1024, help="file size in MiB (default 1024)")
    parser.add_argument("--chunk", type=int, default=64, help="tus PATCH size in MiB (default 64)")
    parser.add_argument("--cp-runs", type=int, default=3, help="how many times to time cp (median; default 3)")
    parser.add_argument("--dir", default=None,
                        help="make the work folder here (default: the system temp folder); "
                             "needs about 2.2x --size free")
    parser.add_argument("--keep", action="store_true", help="keep the work folder and print its path")
    args = parser.parse_args(argv)
    if args.size <= 0 or args.chunk <= 0 or args.cp_runs <= 0:
        parser.error("--size, --chunk and --cp-runs must be positive")
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
