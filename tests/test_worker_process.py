"""`picup worker` as a real process: killed with kill -9 mid-task, another one finishes the work."""

import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from tests import media_files

PICUP = str(Path(sys.executable).parent / "picup")
ENV = {"PATH": "/usr/bin:/bin"}


def query(db: Path, sql: str, *args):
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as conn:
        return conn.execute(sql, args).fetchall()


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_task_held_by_a_killed_worker_is_finished_by_the_next(tmp_path):
    data = tmp_path / "data"
    source = tmp_path / "phone"
    source.mkdir()
    # An iPhone-like HEVC clip big enough that its web copy takes a moment.
    (source / "IMG_0002.MOV").write_bytes(media_files.video("mov", codec="libx265", frames=90, size=(1280, 720)))
    subprocess.run([PICUP, "user", "add", "mom", "--password-stdin", "--data", str(data)], input="long enough\n",
                   text=True, env=ENV, check=True, capture_output=True)
    subprocess.run([PICUP, "import", str(source), "--user", "mom", "--data", str(data)], env=ENV, check=True,
                   capture_output=True)
    db = data / "picup.db"
    log = open(tmp_path / "worker.log", "wb")

    first = subprocess.Popen([PICUP, "worker", "--data", str(data)], env=ENV, stdout=log, stderr=log)
    wait_for(lambda: query(db, "SELECT status FROM task") == [("running",)], 30, "the first worker to claim it")
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert query(db, "SELECT status, attempts FROM task") == [("running", 1)]
    assert query(db, "SELECT render_status FROM media") == [("pending",)]

    # Ten minutes later its lease has run out (moved back in time here rather than waited for).
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE task SET lease_until = '2000-01-01 00:00:00'")
    conn.close()
    second = subprocess.Popen([PICUP, "worker", "--data", str(data)], env=ENV, stdout=log, stderr=log)
    try:
        wait_for(lambda: query(db, "SELECT render_status FROM media") == [("ready",)], 120,
                 "the second worker to finish the render")
        assert query(db, "SELECT status, attempts FROM task") == [("done", 2)]
        assert query(db, "SELECT web_video, video_codec FROM media") == [(1, "hevc")]
    finally:
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=60) == 0, "a worker stops cleanly on SIGTERM"
