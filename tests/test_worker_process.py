"""`picup worker` as a real process: killed with kill -9 mid-task, another one finishes the work."""

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from tests import media_files
from tests.waiting import wait_for

PICUP = str(Path(sys.executable).parent / "picup")
ENV = {"PATH": "/usr/bin:/bin"}


def query(db: Path, sql: str, *args):
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as conn:
        return conn.execute(sql, args).fetchall()




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


def test_sigterm_stops_the_worker_after_the_task_at_hand_not_the_whole_queue(tmp_path):
    data = tmp_path / "data"
    source = tmp_path / "scans"
    source.mkdir()
    for n in range(150):
        (source / f"scan{n:03}.jpg").write_bytes(media_files.noisy_jpeg(n, size=(1200, 900)))
    subprocess.run([PICUP, "user", "add", "mom", "--password-stdin", "--data", str(data)], input="long enough\n",
                   text=True, env=ENV, check=True, capture_output=True)
    subprocess.run([PICUP, "import", str(source), "--user", "mom", "--data", str(data)], env=ENV, check=True,
                   capture_output=True)
    db = data / "picup.db"
    ready = "SELECT COUNT(*) FROM media WHERE render_status = 'ready'"
    worker = subprocess.Popen([PICUP, "worker", "--data", str(data)], env=ENV, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    wait_for(lambda: query(db, ready)[0][0] >= 1, 60, "the first rendition")
    at_signal = query(db, ready)[0][0]
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=60) == 0
    after = query(db, ready)[0][0] - at_signal
    in_flight = 2 * (os.cpu_count() or 1)  # one task per drain (one drain per core), with room for a race
    assert after <= in_flight, f"the worker went on through the queue after SIGTERM ({after} more)"
    assert query(db, "SELECT COUNT(*) FROM task WHERE status = 'running'") == [(0,)], "nothing left half-done"


def test_a_long_render_with_one_process_does_not_fill_the_log(tmp_path):
    """One render process (a small box) and a video that takes seconds: the drain started every
    second finds the last one still busy. That is by design, and says nothing in the log."""
    data = tmp_path / "data"
    source = tmp_path / "phone"
    source.mkdir()
    (source / "IMG_0003.MOV").write_bytes(media_files.video("mov", codec="libx265", frames=360, size=(1280, 720)))
    subprocess.run([PICUP, "user", "add", "mom", "--password-stdin", "--data", str(data)], input="long enough\n",
                   text=True, env=ENV, check=True, capture_output=True)
    subprocess.run([PICUP, "import", str(source), "--user", "mom", "--data", str(data)], env=ENV, check=True,
                   capture_output=True)
    db = data / "picup.db"
    log_path = tmp_path / "worker.log"
    with open(log_path, "wb") as log:
        worker = subprocess.Popen([PICUP, "worker", "--data", str(data)], env={**ENV, "PICUP_WORKER_PROCESSES": "1"},
                                  stdout=log, stderr=log)
        try:
            wait_for(lambda: query(db, "SELECT status FROM task") == [("running",)], 30, "the worker to claim it")
            started = time.monotonic()
            wait_for(lambda: query(db, "SELECT render_status FROM media") == [("ready",)], 120, "the render")
            busy = time.monotonic() - started
        finally:
            worker.send_signal(signal.SIGTERM)
            assert worker.wait(timeout=60) == 0
    assert busy > 2, f"the render took {busy:.1f} s: too short for the drain to find itself busy"
    lines = log_path.read_text().splitlines()
    assert any("renditions made" in line for line in lines), lines[-20:]
    assert not [line for line in lines if "maximum number of running instances" in line], lines[-20:]
