"""Backup benchmark: a run with nothing new over a library of 100,000 originals.

The S3 server is moto's server mode (the one the tests use) in a child
process, so it does not share this process's GIL. The child fills the bucket
directly through moto's in-memory backend (putting 100,000 objects over HTTP
would take longer than the benchmark itself) with exactly the objects a
complete backup of the library holds. The library is real: Picup's schema,
store marker and 100,000 media rows inserted with ``insert_many``.

It then times, ``--runs`` times each, interleaved:

- ``picup.backup.run`` with nothing new to send (one listing, the comparison,
  the database snapshot compressed and sent), and
- the peer: a bare listing of the same objects with the same S3 client,

and prints the medians, the ratio and PASS/MISS for the target (under 30 s).
Nothing is asserted; it exits non-zero only when it cannot run or when a run
sends an original (it must find them all present: a bug, not a slow machine).

    .venv/bin/python bench/backup.py
    .venv/bin/python bench/backup.py --objects 20000 --runs 2
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

TARGET_SECONDS = 30.0
BUCKET = "bench-backup"
ACCESS_KEY, SECRET_KEY, REGION = "bench-access", "bench-secret", "us-east-1"

CHILD = textwrap.dedent(
    """
    import os, sys
    os.environ.update(AWS_ACCESS_KEY_ID="bench-access", AWS_SECRET_ACCESS_KEY="bench-secret",
                      AWS_DEFAULT_REGION="us-east-1")
    import logging
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    from moto.server import ThreadedMotoServer
    from moto.s3.models import s3_backends
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    backend = s3_backends["123456789012"]["aws"]
    backend.create_bucket(sys.argv[1], "us-east-1")
    for line in sys.stdin:
        if line.strip() == "done":
            break
        name, size = line.split()
        backend.put_object(sys.argv[1], name, b"x" * int(size))
    print(f"{host}:{port}", flush=True)
    sys.stdin.read()  # until the parent closes it
    """
)


def sha(i: int) -> str:
    return hashlib.sha256(f"photo {i}".encode()).hexdigest()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--objects", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "app"))
    from minio import Minio

    from picup import backup, config, db, prepare
    from picup.models import Media, User, utcnow

    work = Path(tempfile.mkdtemp(prefix="picup-bench-backup-"))
    child = None
    try:
        print(f"Filling the S3 server with {args.objects:,} objects…", flush=True)
        child = subprocess.Popen([sys.executable, "-c", CHILD, BUCKET], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, text=True)
        sizes = {sha(i): 1000 + i % 5000 for i in range(args.objects)}
        settings = config.load({"data_dir": str(work / "data")}, environ={})
        # The target's object names come from the same function the backup uses.
        target = backup.Target(endpoint="unused", bucket=BUCKET, prefix="home")
        for digest, size in sizes.items():
            child.stdin.write(f"{target.original_name(digest)} {size}\n")
        child.stdin.write("done\n")
        child.stdin.flush()
        endpoint = child.stdout.readline().strip()
        settings = config.load({"data_dir": str(work / "data"), "backup_endpoint": endpoint,
                                "backup_bucket": BUCKET, "backup_prefix": "home",
                                "backup_access_key": ACCESS_KEY, "backup_secret_key": SECRET_KEY,
                                "backup_secure": False, "backup_region": REGION}, environ={})
        store = prepare(settings)
        with db.connection():
            user = User.create(username="mom", display_name="Mom", password_hash="x", is_admin=True)
            now = utcnow()
            rows = [dict(owner=user.id, sha256=digest, size=size, media_type="image/jpeg", kind="photo",
                         original_filename=f"{n}.jpg", taken_at=now, taken_at_source="upload", status="ready",
                         created_at=now) for n, (digest, size) in enumerate(sizes.items())]
            with db.database.atomic():
                for start in range(0, len(rows), 5000):
                    Media.insert_many(rows[start:start + 5000]).execute()
        client = Minio(endpoint=endpoint, access_key=ACCESS_KEY, secret_key=SECRET_KEY, secure=False, region=REGION)

        backup_times, list_times = [], []
        for number in range(args.runs):
            started = time.perf_counter()
            listed = sum(1 for _ in client.list_objects(bucket_name=BUCKET, prefix="home/originals/", recursive=True))
            list_times.append(time.perf_counter() - started)
            started = time.perf_counter()
            with db.connection():
                run = backup.run(settings, store)
            backup_times.append(time.perf_counter() - started)
            figures = json.loads(run.detail)
            print(f"  run {number + 1}: backup {backup_times[-1]:.2f} s (sent {figures['objects_sent']} objects, "
                  f"{figures['bytes_sent']:,} bytes), bare listing of {listed:,} objects {list_times[-1]:.2f} s")
            if figures["objects_sent"] != 1 or listed != args.objects:
                print("FAIL: a run with nothing new sent originals, or the bucket is not what was put in it")
                return 1
        took, peer = statistics.median(backup_times), statistics.median(list_times)
        print()
        print(f"No-change backup over {args.objects:,} originals: {took:.2f} s (median of {args.runs})")
        print(f"Peer, a bare listing with the same client:  {peer:.2f} s")
        print(f"Ratio backup / listing: {took / peer:.2f}")
        verdict = "PASS" if took < TARGET_SECONDS else "MISS"
        print(f"{verdict}  no-change run under {TARGET_SECONDS:.0f} s")
        return 0
    finally:
        if child is not None:
            child.stdin.close()
            child.terminate()
            child.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
