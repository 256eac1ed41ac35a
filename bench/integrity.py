"""Integrity check benchmark: ``picup check --all`` beside ``sha256sum`` of the same files.

Makes a real library in a temporary folder with Picup's own code (schema,
store marker, originals filed by ``put_file``, media rows, renditions
hard-linked in place), then times, ``--runs`` times each and interleaved:

- ``picup.integrity.run(all=True)``: every original read back from the store
  and hashed, its rows stamped, its renditions looked for, the store listed
  for stray files, the run recorded;
- the peer: ``sha256sum`` over the same blob files, in one process.

Before each run the page cache of every file is dropped (``POSIX_FADV_DONTNEED``,
what Picup's check does itself; dropping the whole cache needs root), so both
read what the disk holds. The ratio of the throughputs is the figure that
matters, because the machine is shared and absolute numbers drift.

    .venv/bin/python bench/integrity.py                  # 2 GiB: 448 photos of 4 MiB, 4 videos of 64 MiB
    .venv/bin/python bench/integrity.py --photos 100 --videos 1 --runs 5

Nothing is asserted on speed: the script prints figures and PASS/MISS for the
target. It exits non-zero only when it cannot run, or when the check is wrong:
a clean library not reported clean, ``sha256sum`` disagreeing with the
database, or one flipped byte not found (bugs, not slow machines).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import logging
import os
import resource
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MB = 1000 * 1000
MiB = 1024 * 1024
TARGET_RATIO = 0.9  # Picup's check throughput / sha256sum's, same files, same run


def make_file(path: Path, size: int, serial: int, head: bytes, block: bytearray) -> str:
    """A real JPEG head followed by filler no two files (nor two MiB) share; returns its SHA-256."""
    digest = hashlib.sha256(head)
    left = size - len(head)
    counter = 0
    with open(path, "wb", buffering=0) as out:
        out.write(head)
        while left:
            struct.pack_into("<QQ", block, 0, serial, counter)
            piece = memoryview(block)[: min(left, MiB)]
            out.write(piece)
            digest.update(piece)
            left -= len(piece)
            counter += 1
    return digest.hexdigest()


def drop_cache(paths: list[str]) -> None:
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def build(workdir: Path, args):
    """The library: settings, store, the blob paths and their expected SHA-256."""
    from PIL import Image

    import picup
    from picup import accounts, config, db, renditions, storage
    from picup.models import Media, utcnow

    settings = config.load({"data_dir": str(workdir / "data")}, environ={})
    store = picup.prepare(settings)
    with db.connection():
        owner = accounts.create_user("bench", "bench-password-123", is_admin=True)
    head = io.BytesIO()
    Image.effect_noise((320, 240), 64).convert("RGB").save(head, "JPEG", quality=85)
    block = bytearray(os.urandom(MiB))
    thumb, preview = workdir / "thumb.webp", workdir / "preview.jpg"
    Image.new("RGB", (400, 300), "teal").save(thumb, "WEBP")
    Image.new("RGB", (2048, 1536), "teal").save(preview, "JPEG")
    sizes = [args.photo_mib * MiB] * args.photos + [args.video_mib * MiB] * args.videos
    rows, expected = [], {}
    incoming = settings.tmp_path
    for serial, size in enumerate(sizes):
        source = incoming / f"source-{serial}"
        sha256 = make_file(source, size, serial, head.getvalue(), block)
        store.put_file(str(source), sha256=sha256)  # fsync, rename, read back: as an upload files it
        for made, name in ((thumb, renditions.THUMB), (preview, renditions.PREVIEW)):
            derived = settings.storage_root / storage.derived_key(sha256, name)
            derived.parent.mkdir(parents=True, exist_ok=True)
            os.link(made, derived)
        expected[store.local_path(storage.blob_key(sha256))] = sha256
        video = serial >= args.photos
        rows.append({"owner": owner.id, "sha256": sha256, "size": size, "kind": "video" if video else "photo",
                     "media_type": "video/mp4" if video else "image/jpeg", "taken_at": utcnow(),
                     "original_filename": f"{'VID' if video else 'IMG'}_{serial:04d}", "taken_at_source": "upload",
                     "status": "ready", "render_status": "ready"})
    with db.connection(), db.database.atomic():
        for start in range(0, len(rows), 500):
            Media.insert_many(rows[start:start + 500]).execute()
    return settings, store, expected


def time_picup(settings, store, paths: list[str]):
    from picup import db, integrity

    drop_cache(paths)
    cpu_before, started = cpu(), time.perf_counter()
    with db.connection():
        run = integrity.run(settings, store, all=True)
    return time.perf_counter() - started, cpu() - cpu_before, run


def time_reading(store, paths: list[str], expected: dict[str, str]) -> float:
    """Picup's reading and hashing alone (``integrity.read_blob``), without the bookkeeping."""
    from picup import integrity, storage

    drop_cache(paths)
    started = time.perf_counter()
    for path in paths:
        sha256, _size = integrity.read_blob(store, storage.blob_key(expected[path]))
        if sha256 != expected[path]:
            raise SystemExit(f"FAIL: read_blob gave a different SHA-256 for {path}")
    return time.perf_counter() - started


def time_sha256sum(paths: list[str], expected: dict[str, str]) -> tuple[float, float, bool]:
    drop_cache(paths)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = subprocess.run(["sha256sum", "--", *paths], check=True, capture_output=True, text=True)
    took = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    spent = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    said = dict(reversed(line.split(None, 1)) for line in result.stdout.splitlines())
    return took, spent, said == expected


def run(args) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="picup-bench-integrity-", dir=args.dir))
    logging.getLogger("picup").setLevel(logging.CRITICAL)  # the flipped byte below is meant to be found
    try:
        total_mib = args.photos * args.photo_mib + args.videos * args.video_mib
        print(f"Picup integrity check benchmark: {args.photos} photo-sized originals of {args.photo_mib} MiB and "
              f"{args.videos} video-sized of {args.video_mib} MiB ({total_mib:,} MiB), local store")
        print(f"  work folder {workdir} (filesystem of {args.dir or tempfile.gettempdir()})")
        started = time.perf_counter()
        settings, store, expected = build(workdir, args)
        paths = list(expected)
        total = sum(os.path.getsize(p) for p in paths)
        print(f"  made the library in {time.perf_counter() - started:.1f} s; page cache of each file dropped "
              f"before every run (POSIX_FADV_DONTNEED)")
        picup_runs, peer_runs, reading = [], [], []
        correct = True
        for number in range(args.runs):
            took, spent, result = time_picup(settings, store, paths)
            clean = (result.status, result.items, result.bytes, result.problems) == ("ok", len(paths), total, 0)
            correct &= clean
            picup_runs.append((took, spent))
            peer_took, peer_spent, agrees = time_sha256sum(paths, expected)
            correct &= agrees
            peer_runs.append((peer_took, peer_spent))
            reading.append(time_reading(store, paths, expected))
            print(f"  run {number + 1}: picup check --all {took:6.2f} s ({total / MB / took:7.1f} MB/s, "
                  f"CPU {spent:5.2f} s)   sha256sum {peer_took:6.2f} s ({total / MB / peer_took:7.1f} MB/s, "
                  f"CPU {peer_spent:5.2f} s)   reading alone {reading[-1]:6.2f} s"
                  + ("" if clean and agrees else "   WRONG RESULT"))

        # One flipped byte must be found, and nothing else.
        from picup import storage

        victim = paths[len(paths) // 2]
        os.chmod(victim, 0o644)
        with open(victim, "r+b") as fh:
            fh.seek(4096)
            byte = fh.read(1)
            fh.seek(4096)
            fh.write(bytes([byte[0] ^ 0x01]))
        _took, _spent, flipped = time_picup(settings, store, paths)
        found = json.loads(flipped.detail)["problems"]
        caught = (flipped.problems == 1 and found[0]["kind"] == "corrupt"
                  and found[0]["sha256"] == expected[victim] and storage.blob_key(expected[victim]) in victim)

        picup_s = statistics.median(t for t, _c in picup_runs)
        peer_s = statistics.median(t for t, _c in peer_runs)
        read_s = statistics.median(reading)
        ratio = peer_s / picup_s  # same bytes: throughput ratio = inverse time ratio
        line = lambda label, text: print(f"  {label:<44}{text}")  # noqa: E731
        print()
        line(f"picup check --all (median of {args.runs})", f"{picup_s:7.2f} s {total / MB / picup_s:8.1f} MB/s")
        line(f"sha256sum, same files (median of {args.runs})", f"{peer_s:7.2f} s {total / MB / peer_s:8.1f} MB/s")
        line("Picup's reading + SHA-256 alone (median)", f"{read_s:7.2f} s {total / MB / read_s:8.1f} MB/s   "
             "(the rest is stamping rows, renditions, the stray listing)")
        line("check/sha256sum throughput ratio", f"{ratio:7.2f}")
        print()
        print("Targets")
        verdict = lambda ok: "PASS" if ok else "MISS"  # noqa: E731
        line(f"check/sha256sum throughput ≥ {TARGET_RATIO:.2f}", f"{ratio:7.2f}       {verdict(ratio >= TARGET_RATIO)}")
        line("clean runs clean; sha256sum agrees", f"{'yes' if correct else 'NO':>7}       "
             f"{'PASS' if correct else 'FAIL'}")
        line("one flipped byte found, nothing else", f"{'yes' if caught else 'NO':>7}       "
             f"{'PASS' if caught else 'FAIL'}")
        return 0 if correct and caught else 1
    finally:
        if args.keep:
            print(f"  (kept {workdir})")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=int, default=448, help="photo-sized originals (default 448)")
    parser.add_argument("--photo-mib", type=int, default=4, help="size of each photo in MiB (default 4)")
    parser.add_argument("--videos", type=int, default=4, help="video-sized originals (default 4)")
    parser.add_argument("--video-mib", type=int, default=64, help="size of each video in MiB (default 64)")
    parser.add_argument("--runs", type=int, default=3, help="timed runs of each (median; default 3)")
    parser.add_argument("--dir", default=None,
                        help="make the work folder here (default: the system temp folder), e.g. the disk "
                             "Picup will really use; needs the library's size free")
    parser.add_argument("--keep", action="store_true", help="keep the work folder and print its path")
    args = parser.parse_args(argv)
    if args.photos < 0 or args.videos < 0 or args.photos + args.videos < 2 or args.runs <= 0:
        parser.error("need at least two originals and one run")
    if args.photo_mib <= 0 or args.video_mib <= 0:
        parser.error("--photo-mib and --video-mib must be positive")
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
