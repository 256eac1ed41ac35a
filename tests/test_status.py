"""The administrator's status: each rule turns its part green, amber or red, in words.

Runs of the integrity check and the backup are ``JobRun`` rows, written here into the
app's real SQLite file the way the jobs write them, then aged. ``/metrics`` is read as
Prometheus text, line by line.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import secrets
import shutil
from importlib import metadata

import peewee
import pytest
from axe_playwright_python.sync_playwright import Axe
from minio import Minio
from playwright.sync_api import expect

from picup import config, create_app, db, status, tasks
from picup.models import JobRun, Media, Task, utcnow
from tests import media_files
from tests.conftest import Api, make_settings
from tests.moto_server import ACCESS_KEY, REGION, SECRET_KEY, moto_s3_server
from tests.test_pages_a11y import ARTIFACTS
from tests.test_pages_browser import sign_in

HOUR = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)
BACKUP = {"backup_endpoint": "127.0.0.1:9", "backup_bucket": "family-backup"}


@pytest.fixture
def settings(tmp_path):
    """This module's Picup has an off-site backup set up (the target is never reached here)."""
    return make_settings(tmp_path / "data", **BACKUP)


def record(kind, state="ok", age=HOUR, minutes=0, **fields):
    """A finished (or running) job run that started ``age`` ago."""
    started = utcnow() - age
    finished = None if state == "running" else started + dt.timedelta(minutes=minutes)
    if isinstance(fields.get("detail"), dict):
        fields["detail"] = json.dumps(fields["detail"])
    with db.connection():
        return JobRun.create(kind=kind, status=state, started_at=started, finished_at=finished, **fields)


def forget(kind):
    with db.connection():
        JobRun.delete().where(JobRun.kind == kind).execute()


def part(api, name, lang="en"):
    answer = api.get("/api/v1/status", headers={"Accept-Language": lang})
    assert answer.status_code == 200, answer.json
    return answer.json["parts"][name]


def sent(objects=12, size=34_500_000):
    return {"objects_sent": objects, "bytes_sent": size, "objects_total": 1200, "bytes_total": 9_800_000_000,
            "snapshot": "db/2026-11-20.sqlite"}


def test_backup_rules(mom):
    backup = part(mom, "backup")
    assert (backup["level"], backup["code"], backup["enabled"]) == ("amber", "backup_first", True)
    assert backup["last_success_at"] is None and backup["lag_seconds"] is None

    record("backup", "failed", age=2 * HOUR, error="the bucket family-backup does not exist")
    backup = part(mom, "backup")
    assert (backup["level"], backup["code"]) == ("red", "backup_never")
    assert backup["message"] == ("No backup has worked yet. The last try, 2 hours ago, failed: "
                                 "the bucket family-backup does not exist")

    record("backup", "ok", age=5 * HOUR, detail=sent())
    backup = part(mom, "backup")
    assert (backup["level"], backup["code"]) == ("amber", "backup_failed"), "a failure after a good backup"
    assert "The one before, 5 hours ago, worked." in backup["message"]

    record("backup", "ok", age=HOUR, detail=sent(1, 2_500_000))
    backup = part(mom, "backup")
    assert (backup["level"], backup["code"]) == ("green", "backup_ok")
    assert backup["message"] == ("Backed up 1 hour ago: 1 new file (2.5 MB) sent. "
                                 "The backup holds 1,200 files (9.8 GB).")
    assert (backup["objects_sent"], backup["bytes_sent"], backup["objects_total"]) == (1, 2_500_000, 1200)
    assert backup["snapshot"] == "db/2026-11-20.sqlite"
    assert 3590 <= backup["lag_seconds"] <= 3700
    assert backup["last_run"]["status"] == "ok"

    forget("backup")
    record("backup", "ok", age=47 * HOUR, detail=sent())
    assert part(mom, "backup")["level"] == "green", "47 hours is still within the two nights allowed"
    forget("backup")
    record("backup", "ok", age=49 * HOUR, detail=sent())
    backup = part(mom, "backup")
    assert (backup["level"], backup["code"]) == ("red", "backup_old")
    assert backup["message"].startswith("The last good backup was 2 days ago.")
    record("backup", "failed", age=HOUR, error="connection refused")
    assert part(mom, "backup")["code"] == "backup_old", "an old backup stays red whatever came after"


def test_no_backup_set_up_is_amber(tmp_path):
    app = create_app(make_settings(tmp_path / "plain"))
    admin = Api(app)
    admin.post("/api/v1/setup", json={"username": "mom", "password": "correct horse", "display_name": "Mom"})
    admin.sign_in("mom")
    record("backup", "ok", age=HOUR, detail=sent())  # left over from when it was set up
    backup = part(admin, "backup")
    assert (backup["level"], backup["code"], backup["enabled"]) == ("amber", "backup_off", False)
    assert backup["message"] == "No off-site backup is set up. If this box breaks, the photos are only here."


def test_integrity_rules(mom, app):
    check = part(mom, "integrity")
    assert (check["level"], check["code"], check["last_run"]) == ("amber", "check_none", None)

    record("check", "ok", age=3 * HOUR, items=1)
    check = part(mom, "integrity")
    assert (check["level"], check["code"]) == ("green", "check_ok")
    assert check["message"] == "Checked 3 hours ago: 1 original read back, and it is as it should be."

    record("check", "problems", age=2 * HOUR, items=2400, problems=2, repaired=2)
    check = part(mom, "integrity")
    assert (check["level"], check["code"]) == ("green", "check_repaired")
    assert "2,400 originals read back. 2 problems were found and all were repaired." in check["message"]

    found = [{"media_id": 7, "filename": "IMG_0042.JPG", "problem": "the file differs from what was stored",
              "repaired": False},
             {"media_id": 8, "filename": "jeju.mp4", "problem": "missing from the photo store", "repaired": True},
             {"media_id": 9, "filename": "cake.heic", "problem": "missing from the photo store", "repaired": False}]
    record("check", "problems", age=HOUR, items=2400, problems=3, repaired=1, detail={"problems": found})
    check = part(mom, "integrity")
    assert (check["level"], check["code"]) == ("red", "check_problems")
    assert "2 problems could not be repaired (3 found in all)" in check["message"]
    assert check["found"] == found
    assert (check["last_run"]["items"], check["last_run"]["problems"], check["last_run"]["repaired"]) == (2400, 3, 1)
    page = mom.get("/status").get_data(as_text=True)
    assert "IMG_0042.JPG: the file differs from what was stored" in page and "not repaired" in page

    record("check", "running", age=HOUR / 2)
    check = part(mom, "integrity")
    assert check["running"] and check["code"] == "check_problems", "a running check does not hide the last result"

    record("check", "failed", age=HOUR / 4, error="the photo store went away")
    check = part(mom, "integrity")
    assert (check["level"], check["code"]) == ("amber", "check_failed")
    assert check["message"] == "The last check, 15 minutes ago, stopped with an error: the photo store went away"

    forget("check")
    record("check", "ok", age=61 * DAY, items=5)  # check_days is 30: 60 days is twice that
    check = part(mom, "integrity")
    assert (check["level"], check["code"]) == ("amber", "check_old")
    assert check["message"].startswith("The last integrity check was 61 days ago.")

    media = mom.upload(media_files.jpeg("teal"), "teal.jpg").json["media"]
    record("check", "ok", age=HOUR, items=5)
    assert part(mom, "integrity")["code"] == "check_ok", "a new photo is not overdue"
    with db.connection():
        Media.update(checked_at=utcnow() - 61 * DAY).where(Media.id == media["id"]).execute()
    check = part(mom, "integrity")
    assert (check["level"], check["code"], check["behind"]) == ("amber", "check_behind", 1)
    assert check["message"] == ("1 original has not been read back for more than 60 days: "
                                "the nightly check is behind.")


def test_failed_tasks_are_amber(mom):
    assert part(mom, "tasks")["code"] == "tasks_ok"
    with db.connection():
        task = tasks.enqueue("thumbnail", {"media_id": 1}, max_attempts=1)
        tasks.fail(tasks.claim(), "the video decoder crashed")
    work = part(mom, "tasks")
    assert (work["level"], work["code"], work["failed"]) == ("amber", "tasks_failed", 1)
    assert work["message"] == "1 task failed after several tries (thumbnail): the video decoder crashed"
    assert work["recent_failures"][0]["id"] == task.id


def test_storage_figures_and_space_rules(mom, settings):
    first = media_files.jpeg("gold")
    mom.upload(first, "gold.jpg")
    mom.upload(media_files.jpeg("plum"), "plum.jpg")
    storage = part(mom, "storage")
    disk = shutil.disk_usage(settings.storage_root)
    assert storage["backend"] == "local" and storage["total_bytes"] == disk.total
    assert abs(storage["free_bytes"] - disk.free) < 200 * 1024**2
    assert storage["used_bytes"] == len(first) + len(media_files.jpeg("plum"))
    assert storage["level"] == status.space_level(storage["free_bytes"], storage["total_bytes"])
    assert "Photos and videos use" in storage["message"]
    assert storage["database"] is None, "the database is on the photo store's disk here"

    gib = 1024**3
    assert status.space_level(gib - 1, 2 * gib) == "red", "under 1 GiB free, however small the disk"
    assert status.space_level(4 * gib, 100 * gib) == "red", "under 5 % free"
    assert status.space_level(5 * gib, 100 * gib) == "amber"
    assert status.space_level(14 * gib, 100 * gib) == "amber", "under 15 % free"
    assert status.space_level(15 * gib, 100 * gib) == "green"


def test_the_whole_is_as_bad_as_its_worst_part_and_speaks_korean(mom):
    record("check", "ok", age=HOUR)
    record("backup", "ok", age=HOUR, detail=sent())
    answer = mom.get("/api/v1/status").json
    levels = [answer["parts"][name]["level"] for name in status.PARTS]
    assert answer["level"] == status.worst(levels)
    assert answer["version"] == metadata.version("picup") == answer["parts"]["version"]["version"]
    forget("backup")
    record("backup", "ok", age=3 * DAY, detail=sent())
    korean = mom.get("/api/v1/status", headers={"Accept-Language": "ko"}).json
    assert korean["level"] == "red" and korean["message"] == "아래에 지금 손봐야 할 것이 있습니다."
    assert korean["parts"]["backup"]["message"].startswith("마지막으로 성공한 백업은 3일 전입니다.")


def test_only_the_administrator_sees_the_status(family, app):
    dad = family.member("dad")
    refused = dad.get("/api/v1/status")
    assert refused.status_code == 403 and refused.json["error"]["code"] == "admin_only"
    assert Api(app).get("/api/v1/status").status_code == 401
    page = dad.get("/status")
    assert page.status_code == 403 and "administrator" in page.get_data(as_text=True)
    assert 'href="/status"' not in dad.get("/").get_data(as_text=True)
    assert 'href="/status"' in family.admin.get("/").get_data(as_text=True)
    stranger = Api(app).get("/status")
    assert stranger.status_code == 302 and stranger.headers["Location"] == "/signin?next=/status"


# ---------------------------------------------------------------- /metrics

HELP = re.compile(r"# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) \S.*")
TYPE = re.compile(r"# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)")
SAMPLE = re.compile(r'([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*"'
                    r'(?:,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*")*\})? '
                    r"(-?[0-9]+(?:\.[0-9]+)?(?:e[+-]?[0-9]+)?|[+-]Inf|NaN)")


def parse_metrics(text: str) -> dict:
    """Prometheus text format 0.0.4, strictly: every line is HELP, TYPE or a sample of a declared family."""
    assert text.endswith("\n")
    declared, samples = {}, {}
    for line in text.splitlines():
        if match := HELP.fullmatch(line):
            assert match.group(1) not in declared, f"HELP after samples or twice: {line}"
            continue
        if match := TYPE.fullmatch(line):
            assert match.group(1) not in declared, f"TYPE twice: {line}"
            declared[match.group(1)] = match.group(2)
            continue
        match = SAMPLE.fullmatch(line)
        assert match, f"not Prometheus text: {line!r}"
        name, labels, value = match.groups()
        assert name in declared, f"{name} has no TYPE before it"
        key = name + (labels or "")
        assert key not in samples, f"{key} twice"
        samples[key] = float(value)
    return samples


def test_metrics_carry_the_status_figures(mom, app):
    content = media_files.jpeg("seagreen")
    mom.upload(content, "sea.jpg")
    check = record("check", "problems", age=2 * HOUR, items=320, problems=4, repaired=3)
    good = record("backup", "ok", age=3 * DAY, detail=sent(17, 123_456))
    record("backup", "failed", age=HOUR, error="connection refused")
    text = mom.get("/metrics").get_data(as_text=True)
    metrics = parse_metrics(text)
    assert metrics['picup_media{state="library"}'] == 1 and metrics["picup_users"] == 1, "the old ones stay"
    assert metrics["picup_check_last_run_timestamp_seconds"] == int(
        check.finished_at.replace(tzinfo=dt.UTC).timestamp())
    assert (metrics["picup_check_items"], metrics["picup_check_problems"], metrics["picup_check_repaired"]) == (
        320, 4, 3)
    assert metrics["picup_backup_last_success_timestamp_seconds"] == int(
        good.finished_at.replace(tzinfo=dt.UTC).timestamp())
    assert abs(metrics["picup_backup_lag_seconds"] - 3 * 86400) < 120
    assert (metrics["picup_backup_objects_sent"], metrics["picup_backup_bytes_sent"]) == (17, 123_456)
    assert metrics["picup_storage_used_bytes"] == len(content)
    assert metrics["picup_storage_free_bytes"] > 0
    assert metrics["picup_status_level"] == 2, "a backup 3 days old is red"
    assert metrics['picup_status_part_level{part="backup"}'] == 2
    assert metrics['picup_status_part_level{part="integrity"}'] == 2, "one problem was not repaired"
    assert metrics[f'picup_info{{version="{metadata.version("picup")}"}}'] == 1
    for name in ("picup_check_items", "picup_backup_lag_seconds", "picup_status_level", "picup_info"):
        assert f"# HELP {name} " in text and f"# TYPE {name} gauge" in text


def test_metrics_before_any_backup(mom):
    metrics = parse_metrics(mom.get("/metrics").get_data(as_text=True))
    assert metrics["picup_backup_last_success_timestamp_seconds"] == 0
    assert math.isinf(metrics["picup_backup_lag_seconds"])
    assert metrics["picup_check_last_run_timestamp_seconds"] == 0
    assert metrics['picup_status_part_level{part="backup"}'] == 1, "set up, and the first has not run yet"
    assert metrics["picup_status_level"] >= 1
    assert parse_metrics("# HELP a b\n# TYPE a gauge\na 1\n") == {"a": 1}
    for broken in ("a 1\n", "# TYPE a gauge\na one\n", "# TYPE a gauge\na{b=c} 1\n", "# TYPE a gauge\na 1"):
        with pytest.raises(AssertionError):
            parse_metrics(broken)


# ---------------------------------------------------------------- S3: free space unknown


@pytest.fixture(scope="module")
def s3_endpoint():
    with moto_s3_server() as address:
        yield address


def test_an_s3_store_has_no_free_space_figure(s3_endpoint, tmp_path):
    bucket = f"family-{secrets.token_hex(4)}"
    Minio(endpoint=s3_endpoint, access_key=ACCESS_KEY, secret_key=SECRET_KEY, secure=False,
          region=REGION).make_bucket(bucket_name=bucket)
    env = {"PICUP_STORAGE_BACKEND": "s3", "PICUP_STORAGE_ENDPOINT": s3_endpoint, "PICUP_STORAGE_BUCKET": bucket,
           "PICUP_STORAGE_ACCESS_KEY": ACCESS_KEY, "PICUP_STORAGE_SECRET_KEY": SECRET_KEY,
           "PICUP_STORAGE_SECURE": "false", "PICUP_STORAGE_REGION": REGION}
    app = create_app(config.load({"data_dir": str(tmp_path / "data")}, environ=env))
    admin = Api(app)
    admin.post("/api/v1/setup", json={"username": "mom", "password": "correct horse"})
    admin.sign_in("mom")
    content = media_files.jpeg("orchid")
    admin.upload(content, "orchid.jpg")
    storage = part(admin, "storage")
    database = shutil.disk_usage(tmp_path / "data")
    assert storage["database"]["total_bytes"] == database.total, "the database's own disk is still watched"
    if status.space_level(storage["database"]["free_bytes"], database.total) == "green":
        assert (storage["level"], storage["code"]) == ("green", "storage_unknown")
        assert len(content) < 1000 and storage["message"] == (
            f"Photos and videos use {len(content)} B. The S3 store does not say how much space is free.")
    assert storage["backend"] == "s3"
    assert storage["free_bytes"] is None and storage["used_bytes"] == len(content)
    text = admin.get("/metrics").get_data(as_text=True)
    metrics = parse_metrics(text)
    assert "picup_storage_free_bytes" not in text and metrics["picup_storage_used_bytes"] == len(content)


# ---------------------------------------------------------------- the page in Chromium


def test_the_admin_sees_a_three_day_old_backup_in_red_words(browser, live_server):
    server = live_server(env={"PICUP_BACKUP_ENDPOINT": BACKUP["backup_endpoint"],
                              "PICUP_BACKUP_BUCKET": BACKUP["backup_bucket"]})
    server.session()  # Mom sets Picup up
    database = peewee.SqliteDatabase(str(server.data_dir / "picup.db"), pragmas=db.PRAGMAS)
    found = [{"media_id": 3, "filename": "IMG_20240505_103000_very_long_name_from_a_phone.JPG",
              "problem": "missing from the photo store, copied back from the backup", "repaired": True}]
    with database.bind_ctx([JobRun, Task]), database.connection_context():
        started = utcnow() - 3 * DAY
        JobRun.create(kind="backup", status="ok", started_at=started, finished_at=started + HOUR,
                      items=40, bytes=9_000_000, detail=json.dumps(sent()))
        JobRun.create(kind="check", status="problems", started_at=utcnow() - HOUR, finished_at=utcnow(), items=40,
                      problems=1, repaired=1, detail=json.dumps({"problems": found}))
        Task.create(kind="thumbnail", status="failed", attempts=5, last_error="the video decoder crashed")

    page = browser.new_page(locale="en-US")
    try:
        sign_in(page, server)
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Status").click()
        expect(page.get_by_role("heading", name="How Picup is doing", level=1)).to_be_visible()
        overall = page.locator(".status-overall")
        expect(overall).to_contain_text("Needs attention now")
        expect(overall).to_contain_text("Something below needs attention now.")
        backup = page.locator("li.status-part", has=page.get_by_role("heading", name="Off-site backup"))
        expect(backup).to_contain_text("Needs attention now")
        expect(backup).to_contain_text("The last good backup was 3 days ago.")
        assert backup.evaluate("node => getComputedStyle(node).borderLeftColor") == "rgb(160, 0, 0)"
        check = page.locator("li.status-part", has=page.get_by_role("heading", name="Integrity check"))
        expect(check).to_contain_text("Fine")
        expect(check).to_contain_text("40 originals read back. 1 problem was found and repaired.")
        expect(check.get_by_role("listitem")).to_contain_text("very_long_name_from_a_phone.JPG: missing")
        assert check.evaluate("node => getComputedStyle(node).borderLeftColor") == "rgb(20, 96, 42)"
        work = page.locator("li.status-part", has=page.get_by_role("heading", name="Worker tasks"))
        expect(work).to_contain_text("Needs a look")
        expect(work).to_contain_text("1 task failed after several tries (thumbnail): the video decoder crashed")
        when = page.locator("main > p.hint time")
        expect(when).not_to_have_text(re.compile(r"^\d{4}-\d\d-\d\dT"))  # shown as a local date in words
        expect(page.locator('nav a[href="/status"]')).to_have_attribute("aria-current", "page")
        for width in (390, 1440):  # red, the lists and a long file name: still readable, and it fits
            page.set_viewport_size({"width": width, "height": 900})
            shot = ARTIFACTS / "screenshots" / f"status-red-{width}.png"
            shot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(shot), full_page=True)
            violations = Axe().run(page).response["violations"]
            serious = [v["id"] for v in violations if v["impact"] in ("serious", "critical")]
            assert not serious, serious
            assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 1
    finally:
        page.close()
