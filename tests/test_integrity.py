"""The integrity check reads originals back, finds what is wrong, repairs what the backup can,
and never deletes from a store it cannot vouch for. Real files, a real S3 server, real processes."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import logging
import os
import secrets
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from picup import backup, config, create_app, db, integrity, jobs, renditions, storage, worker
from picup.models import JobRun, Media, StrayBlob, Task, utcnow
from tests import media_files
from tests.conftest import Api, make_settings, render_everything, store_of
from tests.moto_server import ACCESS_KEY, REGION, SECRET_KEY, client

PICUP = str(Path(sys.executable).parent / "picup")
ENV = {"PATH": "/usr/bin:/bin"}


# ------------------------------------------------------------------ helpers
def blob_path(settings, sha256: str) -> Path:
    return settings.storage_root / storage.blob_key(sha256)


def flip_byte(path: Path, offset: int = 200) -> None:
    """Bit rot: one byte of a stored original changes (stored files are read-only: chmod first)."""
    os.chmod(path, 0o644)
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(data)


def check(settings, store, **kwargs) -> JobRun:
    with db.connection():
        return integrity.run(settings, store, **kwargs)


def upload_photos(api: Api, count: int, first_seed: int = 0) -> list[dict]:
    return [api.upload(media_files.noisy_jpeg(first_seed + n), f"IMG_{first_seed + n:04d}.jpg").json["media"]
            for n in range(count)]


def stamps() -> dict[int, dt.datetime | None]:
    with db.connection():
        return dict(Media.select(Media.id, Media.checked_at).tuples())




def query(db_path: Path, sql: str, *args):
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=10) as conn:
        return conn.execute(sql, args).fetchall()


# ------------------------------------------------------------- a clean library
def test_a_clean_library_is_ok_and_every_original_is_counted(mom, app, settings):
    photos = upload_photos(mom, 3)
    render_everything(app, settings)
    run = check(settings, store_of(app), all=True)
    assert (run.kind, run.status, run.error) == ("check", "ok", None)
    assert (run.items, run.problems, run.repaired) == (3, 0, 0)
    assert run.bytes == sum(p["size"] for p in photos)
    assert run.finished_at >= run.started_at
    assert all(stamp is not None and stamp >= run.started_at for stamp in stamps().values())
    detail = json.loads(run.detail)
    assert detail["problems"] == [] and detail["all"] is True and detail["never_checked"] == 0
    assert "Checked 3 originals" in integrity.summary(run) and "Everything is intact." in integrity.summary(run)


def test_one_blob_kept_by_two_people_is_read_once(family, app, settings):
    content = media_files.noisy_jpeg(7)
    family.admin.upload(content, "mine.jpg")
    family.member("dad").upload(content, "dads.jpg")
    run = check(settings, store_of(app), all=True)
    assert (run.status, run.items, run.bytes) == ("ok", 1, len(content))
    assert all(stamp is not None for stamp in stamps().values()), "both rows are stamped"


# ----------------------------------------------------------- damaged originals
def test_a_flipped_byte_is_reported_and_stays_a_problem_without_a_backup(mom, app, settings, caplog):
    good, bad = upload_photos(mom, 2)
    flip_byte(blob_path(settings, bad["sha256"]))
    with caplog.at_level(logging.INFO):
        run = check(settings, store_of(app), all=True)
    assert (run.status, run.items, run.problems, run.repaired) == ("problems", 2, 1, 0)
    [problem] = json.loads(run.detail)["problems"]
    assert problem["kind"] == "corrupt" and problem["repaired"] is False
    assert (problem["media_id"], problem["owner"], problem["filename"]) == (bad["id"], "mom", bad["filename"])
    assert "damaged" in problem["problem"] and "no backup is set up" in problem["outcome"]
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR and r.name == "picup.integrity"]
    assert any(bad["filename"] in r.getMessage() and "damaged" in r.getMessage() for r in errors), "said loudly"
    assert integrity.unrepaired(run) == 1

    # Not stamped: the damaged original is read, and reported, first thing on the next night.
    assert stamps()[bad["id"]] is None and stamps()[good["id"]] is not None
    nightly = check(settings, store_of(app))
    assert (nightly.status, nightly.problems, nightly.repaired) == ("problems", 1, 0)
    assert json.loads(nightly.detail)["problems"][0]["media_id"] == bad["id"]


def test_every_problem_left_is_reported_again_each_night_beyond_the_nights_share(mom, app, settings):
    photos = upload_photos(mom, 5)  # check_days is 30: a night's share is one original
    flip_byte(blob_path(settings, photos[1]["sha256"]))
    blob_path(settings, photos[3]["sha256"]).unlink()
    check(settings, store_of(app), all=True)
    for _night in range(2):
        before = stamps()
        run = check(settings, store_of(app))
        assert (run.items, run.problems, run.repaired) == (3, 2, 0), "both problems, and the night's share"
        assert {p["media_id"] for p in json.loads(run.detail)["problems"]} == {photos[1]["id"], photos[3]["id"]}
        assert sum(stamp != before[media_id] for media_id, stamp in stamps().items()) == 1


def test_picup_check_exits_1_and_says_what_is_wrong(mom, app, settings):
    _good, bad = upload_photos(mom, 2)
    flip_byte(blob_path(settings, bad["sha256"]))
    result = subprocess.run([PICUP, "check", "--all", "--data", str(settings.data_path)], env=ENV,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1, result.stderr
    said = [line for line in result.stdout.splitlines() if not line.startswith("{")]  # not the JSON logs
    text = "\n".join(said)
    assert "Checked 2 originals" in text and "Found 1 problem: 0 repaired, 1 needs a person." in text
    assert f"{bad['filename']} (photo {bad['id']}, mom): the stored original is damaged" in text
    assert query(settings.data_path / "picup.db", "SELECT status, problems FROM job_run") == [("problems", 1)]


def test_picup_check_exits_0_on_a_clean_library(mom, app, settings):
    upload_photos(mom, 2)
    result = subprocess.run([PICUP, "check", "--data", str(settings.data_path)], env=ENV,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Everything is intact." in result.stdout


def test_a_missing_original_is_reported(mom, app, settings):
    _kept, gone = upload_photos(mom, 2)
    blob_path(settings, gone["sha256"]).unlink()
    run = check(settings, store_of(app), all=True)
    assert (run.status, run.problems, run.repaired) == ("problems", 1, 0)
    [problem] = json.loads(run.detail)["problems"]
    assert (problem["kind"], problem["media_id"]) == ("missing", gone["id"])
    assert "missing" in problem["text"] and gone["filename"] in problem["text"]


def test_an_empty_mount_is_an_outage_not_a_thousand_missing_photos(mom, app, settings):
    photos = upload_photos(mom, 2)
    for photo in photos:
        blob_path(settings, photo["sha256"]).unlink()
    (settings.storage_root / storage.MARKER_NAME).unlink()
    run = check(settings, store_of(app), all=True)
    assert run.status == "failed" and "marker" in run.error
    assert (run.items, run.problems) == (0, 0), "nothing is read or reported from a store we cannot vouch for"


# ------------------------------------------------------------ repair from backup
def new_bucket(endpoint) -> str:
    name = f"check-{secrets.token_hex(4)}"
    client(endpoint).make_bucket(bucket_name=name)
    return name


@pytest.fixture
def backed_up(tmp_path, endpoint):
    """A library with a backup target on the real S3 server."""
    return make_settings(tmp_path / "data", backup_endpoint=endpoint, backup_bucket=new_bucket(endpoint),
                         backup_prefix="home/", backup_access_key=ACCESS_KEY, backup_secret_key=SECRET_KEY,
                         backup_secure=False, backup_region=REGION)


def test_a_damaged_or_missing_original_is_restored_from_the_backup(backed_up, caplog):
    app = create_app(backed_up)
    store = store_of(app)
    mom = Api(app)
    mom.csrf = mom.post("/api/v1/setup", json={"username": "mom", "password": "correct horse"}).json["csrf_token"]
    rotten, lost, fine = upload_photos(mom, 3)
    originals = {p["sha256"]: blob_path(backed_up, p["sha256"]).read_bytes() for p in (rotten, lost, fine)}
    with db.connection():
        assert backup.run(backed_up, store).status == "ok"
    late = mom.upload(media_files.noisy_jpeg(99), "after-the-backup.jpg").json["media"]

    flip_byte(blob_path(backed_up, rotten["sha256"]))
    blob_path(backed_up, lost["sha256"]).unlink()
    blob_path(backed_up, late["sha256"]).unlink()
    with caplog.at_level(logging.INFO):
        run = check(backed_up, store, all=True)

    assert (run.status, run.items, run.problems, run.repaired) == ("problems", 4, 3, 2)
    for photo in (rotten, lost, fine):
        path = blob_path(backed_up, photo["sha256"])
        assert path.read_bytes() == originals[photo["sha256"]], "bytes identical to the original"
        assert path.stat().st_mode & 0o777 == 0o444, "a restored original is read-only again"
    by_id = {p["media_id"]: p for p in json.loads(run.detail)["problems"]}
    assert by_id[rotten["id"]]["kind"] == "corrupt" and by_id[rotten["id"]]["repaired"] is True
    assert by_id[lost["id"]]["kind"] == "missing" and by_id[lost["id"]]["repaired"] is True
    assert "restored from the backup" in by_id[lost["id"]]["outcome"]
    assert by_id[late["id"]]["repaired"] is False and "backup has no copy" in by_id[late["id"]]["outcome"]
    restored = [r for r in caplog.records if r.name == "picup.integrity" and "restored from the backup" in
                r.getMessage()]
    assert {r.media_id for r in restored} == {rotten["id"], lost["id"]}, "each repair is logged"
    assert not list(backed_up.tmp_path.glob("check-restore-*")), "no temporary copy is left behind"
    stamped = stamps()
    assert stamped[rotten["id"]] and stamped[lost["id"]] and stamped[late["id"]] is None
    assert mom.get(f"/api/v1/media/{rotten['id']}/original").data == originals[rotten["sha256"]]


def test_a_damaged_original_on_an_s3_store_is_found(tmp_path, endpoint):
    bucket = new_bucket(endpoint)
    settings = config.load({"data_dir": str(tmp_path / "data")}, environ={
        "PICUP_STORAGE_BACKEND": "s3", "PICUP_STORAGE_ENDPOINT": endpoint, "PICUP_STORAGE_BUCKET": bucket,
        "PICUP_STORAGE_PREFIX": "picup/", "PICUP_STORAGE_ACCESS_KEY": ACCESS_KEY,
        "PICUP_STORAGE_SECRET_KEY": SECRET_KEY, "PICUP_STORAGE_SECURE": "false", "PICUP_STORAGE_REGION": REGION})
    app = create_app(settings)
    mom = Api(app)
    mom.csrf = mom.post("/api/v1/setup", json={"username": "mom", "password": "correct horse"}).json["csrf_token"]
    good, bad = upload_photos(mom, 2)
    damaged = bytearray(media_files.noisy_jpeg(1))
    damaged[300] ^= 0x80
    client(endpoint).put_object(bucket_name=bucket, object_name="picup/" + storage.blob_key(bad["sha256"]),
                            data=io.BytesIO(bytes(damaged)), length=len(damaged))
    run = check(settings, store_of(app), all=True)
    assert (run.status, run.items, run.problems) == ("problems", 2, 1)
    [problem] = json.loads(run.detail)["problems"]
    assert (problem["kind"], problem["media_id"]) == ("corrupt", bad["id"])
    assert run.bytes == good["size"] + len(damaged)


# ---------------------------------------------------------------- stray blobs
def test_a_stray_blob_is_reported_kept_through_the_grace_period_then_removed(mom, app, settings):
    store = store_of(app)
    photo = upload_photos(mom, 1)[0]
    trashed = upload_photos(mom, 1, first_seed=50)[0]
    mom.delete(f"/api/v1/media/{trashed['id']}")
    stray = store.put(io.BytesIO(media_files.noisy_jpeg(77)))
    thumb = tmp_thumb(settings)
    store.put_file(str(thumb), sha256=hashlib.sha256(thumb.read_bytes()).hexdigest(),
                   key=storage.derived_key(stray.sha256, renditions.THUMB))

    first = check(settings, store, all=True)
    assert (first.status, first.problems, first.repaired) == ("problems", 1, 0)
    [problem] = json.loads(first.detail)["problems"]
    assert (problem["kind"], problem["key"], problem["repaired"]) == ("stray", stray.key, False)
    assert "no photo refers to" in problem["problem"] and "kept until" in problem["outcome"]
    assert store.exists(stray.key)
    with db.connection():
        seen = StrayBlob.get_by_id(stray.key).first_seen_at

    # Thirteen days later it is still kept, and its first sighting is not reset.
    age_stray(stray.key, days=13)
    assert check(settings, store, all=True).repaired == 0 and store.exists(stray.key)
    with db.connection():
        assert StrayBlob.get_by_id(stray.key).first_seen_at < seen

    age_stray(stray.key, days=15)
    run = check(settings, store, all=True)
    assert (run.status, run.problems, run.repaired) == ("problems", 1, 1)
    assert "removed after 14 days" in json.loads(run.detail)["problems"][0]["outcome"]
    assert not store.exists(stray.key)
    assert not store.exists(storage.derived_key(stray.sha256, renditions.THUMB))
    with db.connection():
        assert StrayBlob.select().count() == 0
    assert store.exists(storage.blob_key(photo["sha256"])) and store.exists(storage.blob_key(trashed["sha256"]))
    assert check(settings, store, all=True).status == "ok"


def test_a_stray_blob_is_never_removed_when_the_marker_is_missing(mom, app, settings):
    store = store_of(app)
    upload_photos(mom, 1)
    stray = store.put(io.BytesIO(media_files.noisy_jpeg(78)))
    check(settings, store)
    age_stray(stray.key, days=400)
    (settings.storage_root / storage.MARKER_NAME).unlink()
    run = check(settings, store)
    assert run.status == "failed" and "marker" in run.error
    assert store.exists(stray.key)
    with db.connection():
        assert StrayBlob.get_or_none(StrayBlob.key == stray.key) is not None
    result = subprocess.run([PICUP, "check", "--data", str(settings.data_path)], env=ENV, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 1 and "marker" in result.stderr
    assert store.exists(stray.key)


def tmp_thumb(settings) -> Path:
    settings.tmp_path.mkdir(parents=True, exist_ok=True)
    path = settings.tmp_path / f"thumb-{secrets.token_hex(4)}.webp"
    Image.new("RGB", (40, 30), "red").save(path, "WEBP")
    return path


def age_stray(key: str, days: int) -> None:
    with db.connection():
        StrayBlob.update(first_seen_at=utcnow() - dt.timedelta(days=days)).where(StrayBlob.key == key).execute()


# ----------------------------------------------------------- missing renditions
def test_a_missing_thumbnail_is_queued_again_and_made(mom, app, settings):
    store = store_of(app)
    photo, other = upload_photos(mom, 2)
    render_everything(app, settings)
    thumb = storage.derived_key(photo["sha256"], renditions.THUMB)
    store.delete(thumb)
    run = check(settings, store, all=True)
    assert (run.status, run.problems, run.repaired) == ("problems", 1, 1)
    [problem] = json.loads(run.detail)["problems"]
    assert (problem["kind"], problem["media_id"]) == ("renditions", photo["id"])
    assert problem["problem"] == "its thumbnail is missing" and problem["outcome"] == "queued to be made again"
    with db.connection():
        assert Media.get_by_id(photo["id"]).render_status == "pending"
        assert Media.get_by_id(other["id"]).render_status == "ready"
        queued = [json.loads(t.payload)["media_id"] for t in Task.select().where(
            (Task.kind == renditions.KIND) & (Task.status == "queued"))]
    assert queued == [photo["id"]]
    render_everything(app, settings)
    assert store.exists(thumb)
    assert mom.get(f"/api/v1/media/{photo['id']}/thumb").status_code == 200
    assert check(settings, store, all=True).status == "ok"


# -------------------------------------------------------------- the schedule
def test_n_nightly_runs_read_every_original_without_a_spike(tmp_path):
    settings = make_settings(tmp_path / "data", check_days=4)
    app = create_app(settings)
    mom = Api(app)
    mom.csrf = mom.post("/api/v1/setup", json={"username": "mom", "password": "correct horse"}).json["csrf_token"]
    upload_photos(mom, 10)
    read_in = {}
    for night in range(4):
        before = stamps()
        run = check(settings, store_of(app))
        after = stamps()
        read = {media_id for media_id, stamp in after.items() if stamp != before[media_id]}
        assert run.status == "ok" and run.items == len(read)
        assert 3 <= run.items <= 4, "a night reads about a quarter (ceil(10 / 4) = 3, and 1/4 of the bytes)"
        for media_id in read:
            read_in.setdefault(media_id, night)
    assert set(read_in) == set(stamps()), "after check_days nights every original was read"
    assert all(stamp is not None for stamp in stamps().values())
    # From then on each night reads the ones read longest ago.
    before = stamps()
    check(settings, store_of(app))
    again = {media_id for media_id, stamp in stamps().items() if stamp != before[media_id]}
    rest = set(before) - again
    assert again and max(before[m] for m in again) <= min(before[m] for m in rest)


def test_all_reads_everything_now_where_a_night_reads_its_share(mom, app, settings):
    upload_photos(mom, 6)
    nightly = check(settings, store_of(app))
    assert nightly.items == 1, "check_days is 30: one of six originals tonight"
    assert json.loads(nightly.detail)["never_checked"] == 5
    assert "5 originals have not been read back yet" in integrity.summary(nightly)
    everything = check(settings, store_of(app), all=True)
    assert everything.items == 6 and everything.status == "ok"


# ---------------------------------------------------- one at a time, and kill -9
def test_two_checks_never_run_at_once(mom, app, settings):
    upload_photos(mom, 1)
    with db.connection(), jobs.exclusive(settings, "check"):
        with pytest.raises(jobs.JobBusy):
            integrity.run(settings, store_of(app), all=True)
        result = subprocess.run([PICUP, "check", "--data", str(settings.data_path)], env=ENV,
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 1 and "another integrity check is running" in result.stderr
        assert JobRun.select().count() == 0


def bulk_library(settings, owner_id: int, count: int) -> None:
    """``count`` distinct real JPEGs filed straight into the store, with their rows and (hard-linked)
    renditions: building a library this size through uploads and the renderer would take minutes."""
    base = media_files.jpeg("purple", size=(32, 24))
    thumb, preview = tmp_thumb(settings), settings.tmp_path / "preview.jpg"
    preview.write_bytes(media_files.jpeg("purple", size=(64, 48)))
    rows = []
    for n in range(count):
        content = base + n.to_bytes(4, "big")  # bytes after the JPEG's end: still the same picture
        sha256 = hashlib.sha256(content).hexdigest()
        path = blob_path(settings, sha256)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        path.chmod(0o444)
        for source, name in ((thumb, renditions.THUMB), (preview, renditions.PREVIEW)):
            derived = settings.storage_root / storage.derived_key(sha256, name)
            derived.parent.mkdir(parents=True, exist_ok=True)
            os.link(source, derived)
        rows.append({"owner": owner_id, "sha256": sha256, "size": len(content), "media_type": "image/jpeg",
                     "kind": "photo", "original_filename": f"IMG_{n:05d}.jpg", "taken_at": utcnow(),
                     "taken_at_source": "upload", "status": "ready", "render_status": "ready"})
    with db.connection(), db.database.atomic():
        for start in range(0, count, 500):
            Media.insert_many(rows[start:start + 500]).execute()


def test_a_check_killed_mid_run_is_marked_interrupted_and_the_next_one_carries_on(mom, app, settings):
    total = 3000
    bulk_library(settings, mom.user["id"], total)
    database = settings.data_path / "picup.db"
    log = open(settings.data_path.parent / "check.log", "wb")
    first = subprocess.Popen([PICUP, "check", "--all", "--data", str(settings.data_path)], env=ENV,
                             stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 60
        while not query(database, "SELECT 1 FROM job_run WHERE status = 'running' AND items > 0"):
            assert first.poll() is None and time.monotonic() < deadline, "the check never got going"
            time.sleep(0.005)
        # Hold the database's write lock: the check cannot commit its next step (nor finish)
        # while we look, so it is surely killed mid-run.
        hold = sqlite3.connect(database, timeout=10, isolation_level=None)
        hold.execute("BEGIN IMMEDIATE")
        [(status, items)] = hold.execute("SELECT status, items FROM job_run").fetchall()
        assert status == "running" and 0 < items < total, (status, items)
        first.send_signal(signal.SIGKILL)
        first.wait(30)
        hold.execute("ROLLBACK")
        hold.close()
    finally:
        if first.poll() is None:
            first.kill()
    stamped = query(database, "SELECT COUNT(*) FROM media WHERE checked_at IS NOT NULL")[0][0]
    assert 0 < stamped < total and query(database, "SELECT status FROM job_run") == [("running",)]

    second = subprocess.run([PICUP, "check", "--all", "--data", str(settings.data_path)], env=ENV,
                            capture_output=True, text=True, timeout=120)
    assert second.returncode == 0, second.stdout[-2000:] + second.stderr[-2000:]
    runs = query(database, "SELECT status, error, items, problems FROM job_run ORDER BY id")
    assert runs[0][0] == "failed" and runs[0][1].startswith("interrupted")
    assert runs[1] == ("ok", None, total - stamped, 0), "it carried on: only what the killed run had not done"
    assert query(database, "SELECT COUNT(*) FROM media WHERE checked_at IS NULL") == [(0,)]
    assert not list(settings.tmp_path.glob("check-restore-*"))


# ----------------------------------------------------------------- the worker
def test_the_worker_runs_the_check_once_a_night_and_catches_up_a_missed_night(tmp_path):
    settings = make_settings(tmp_path / "data", nightly_hour=4)
    app = create_app(settings)
    w = worker.Worker(settings, store_of(app), processes=1)
    w.start()
    try:
        job = w.scheduler.get_job("integrity-check")
        assert job.func is worker.check_integrity
        assert job.next_run_time.minute == 0, "it asks every hour whether the night's check is due"
    finally:
        w.stop()
    worker.check_integrity(store_of(app), settings)  # never checked: at once
    with db.connection():
        assert [(r.kind, r.status) for r in JobRun.select()] == [("check", "ok")]
        worker.check_integrity(store_of(app), settings)
        assert JobRun.select().count() == 1, "not twice in one night"
        JobRun.update(started_at=utcnow() - dt.timedelta(hours=27)).execute()
        with jobs.exclusive(settings, "check"):
            worker.check_integrity(store_of(app), settings)  # due, but busy: skipped, said, not raised
        assert JobRun.select().count() == 1
        worker.check_integrity(store_of(app), settings)
        assert JobRun.select().count() == 2, "the box was off last night: caught up"
        night = dt.datetime(2026, 11, 23, 4, 0)
        JobRun.update(started_at=utcnow() - dt.timedelta(hours=21)).execute()
        assert jobs.nightly_due("check", 4, night, finished=("ok", "problems"))
        assert not jobs.nightly_due("check", 4, night.replace(hour=12), finished=("ok", "problems"))
