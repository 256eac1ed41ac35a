"""Off-site backup and restore, against a real S3 server (moto's server mode over HTTP)."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import logging
import re
import secrets
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from PIL import Image

from picup import backup, create_app, db, encryption, integrity, jobs, restore, storage
from picup.models import BackupGone, JobRun, Media, utcnow
from tests import media_files
from tests.conftest import Api, make_settings, render_everything, store_of
from tests.http_faults import FaultyS3
from tests.moto_server import ACCESS_KEY, REGION, SECRET_KEY, client
from tests.tcp_proxy import TcpProxy
from tests.waiting import wait_for

PICUP = str(Path(sys.executable).parent / "picup")


@pytest.fixture
def bucket(endpoint):
    name = f"backup-{secrets.token_hex(4)}"
    client(endpoint).make_bucket(bucket_name=name)
    return name


def backup_overrides(endpoint, bucket, **more) -> dict:
    return {"backup_endpoint": endpoint, "backup_bucket": bucket, "backup_prefix": "home/",
            "backup_access_key": ACCESS_KEY, "backup_secret_key": SECRET_KEY, "backup_secure": False,
            "backup_region": REGION, **more}


@pytest.fixture
def settings(tmp_path, endpoint, bucket):
    """The conftest fixtures (app, family, mom) run on these settings: a library with a backup target."""
    return make_settings(tmp_path / "data", **backup_overrides(endpoint, bucket))


def objects(endpoint, bucket, prefix="home/") -> dict[str, int]:
    return {o.object_name: o.size for o in client(endpoint).list_objects(bucket_name=bucket, prefix=prefix,
                                                                     recursive=True)}


def raw_object(endpoint, bucket, name) -> bytes:
    response = client(endpoint).get_object(bucket_name=bucket, object_name=name)
    try:
        return response.read()
    finally:
        response.close()
        response.release_conn()




def library_view(api: Api) -> dict:
    """What a family member sees: media (by hash and name), trash, albums with their items."""
    media = api.get("/api/v1/media?limit=500").json["items"]
    albums = api.get("/api/v1/albums").json["albums"]
    return {
        "media": sorted((m["sha256"], m["filename"], m["kind"], m["taken_at"]) for m in media),
        "trash": sorted(m["sha256"] for m in api.get("/api/v1/trash").json["items"]),
        "albums": sorted(
            (a["title"], tuple(sorted(m["sha256"] for m in api.get(f"/api/v1/media?album={a['id']}").json["items"])))
            for a in albums
        ),
    }


# ------------------------------------------------------------------ the drill
def test_the_restore_drill_brings_back_every_original_album_trash_and_account(family, app, settings):
    mom = family.admin
    dad = family.member("dad", display_name="Dad")
    originals = {}
    mom_items = []
    photos = [media_files.noisy_jpeg(seed) for seed in range(3)]
    for seed, content in enumerate(photos):
        mom_items.append(mom.upload(content, f"beach-{seed}.jpg").json["media"])
    clip = media_files.video("mp4", frames=24)
    mom_items.append(mom.upload(clip, "first-steps.mp4").json["media"])
    shared_bytes = photos[0]  # Dad has the same photo: one blob, two rows
    dad_items = [dad.upload(shared_bytes, "same.jpg").json["media"],
                 dad.upload(media_files.jpeg("green"), "garden.jpg").json["media"]]
    for item in mom_items + dad_items:
        originals[item["sha256"]] = item
    album = mom.post("/api/v1/albums", json={"title": "Summer"}).json["album"]
    mom.post(f"/api/v1/albums/{album['id']}/media", json={"media_ids": [mom_items[0]["id"], mom_items[3]["id"]]})
    mom.put(f"/api/v1/albums/{album['id']}/members", json={"members": [{"user_id": dad.user["id"], "role": "view"}]})
    assert mom.delete(f"/api/v1/media/{mom_items[2]['id']}").status_code in (200, 204)  # to the trash
    render_everything(app, settings)
    before = {"mom": library_view(mom), "dad": library_view(dad)}
    bytes_before = {sha: store_of(app).open(storage.blob_key(sha)).read() for sha in originals}
    assert all(hashlib.sha256(data).hexdigest() == sha for sha, data in bytes_before.items())

    with db.connection():
        run = backup.run(settings, store_of(app))
    figures = json.loads(run.detail)
    assert run.status == "ok" and figures["objects_total"] == len(originals) == 5
    assert figures["objects_sent"] == 5 + 1  # five originals and the database snapshot

    # The machine is lost: data folder, database, photos, secret key.
    db.database.close()
    shutil.rmtree(settings.data_path)
    assert not settings.data_path.exists()

    result = restore.restore(settings)
    assert result.originals == 5 and not result.missing
    app2 = create_app(settings)
    mom2, dad2 = Api(app2).sign_in("mom"), Api(app2).sign_in("dad")
    assert library_view(mom2) == before["mom"]
    assert library_view(dad2) == before["dad"]
    for sha, item in originals.items():
        with store_of(app2).open(storage.blob_key(sha)) as fh:
            assert fh.read() == bytes_before[sha], "every original, trashed ones too, is byte-identical"
        if item["id"] != mom_items[2]["id"]:  # the trashed one is only in the trash view
            who = mom2 if item in mom_items else dad2
            assert who.get(f"/api/v1/media/{item['id']}/original").data == bytes_before[sha]
    # The worker makes the thumbnails again.
    assert mom2.get(f"/api/v1/media/{mom_items[0]['id']}/thumb").status_code != 200
    render_everything(app2, settings)
    thumb = mom2.get(f"/api/v1/media/{mom_items[0]['id']}/thumb")
    assert thumb.status_code == 200 and thumb.data[:4] == b"RIFF"
    assert mom2.get(f"/api/v1/media/{mom_items[3]['id']}/video").status_code in (200, 206)


def test_restore_refuses_to_overwrite_a_library(mom, app, settings):
    mom.upload(media_files.jpeg("red"), "a.jpg")
    with db.connection():
        backup.run(settings, store_of(app))
    with pytest.raises(restore.RestoreError, match="already holds a library"):
        restore.restore(settings)
    assert mom.get("/api/v1/media").json["items"], "the library is untouched"


# ------------------------------------------------------------------ incremental
def test_a_second_run_sends_only_what_is_new(mom, app, settings, endpoint, bucket):
    mom.upload(media_files.noisy_jpeg(1), "one.jpg")
    with db.connection():
        first = backup.run(settings, store_of(app))
        second = backup.run(settings, store_of(app))
        mom.upload(media_files.noisy_jpeg(2), "two.jpg")
        third = backup.run(settings, store_of(app))
    assert json.loads(first.detail)["objects_sent"] == 2
    assert json.loads(second.detail)["objects_sent"] == 1, "nothing new: only the day's database snapshot"
    assert json.loads(third.detail)["objects_sent"] == 2
    names = objects(endpoint, bucket)
    assert sum(1 for n in names if n.startswith("home/originals/")) == 2
    assert "home/picup-backup.json" in names


def test_an_object_damaged_in_the_bucket_is_sent_again(mom, app, settings, endpoint, bucket):
    """A size that does not match means the copy is not good: it is replaced."""
    item = mom.upload(media_files.noisy_jpeg(4), "x.jpg").json["media"]
    with db.connection():
        backup.run(settings, store_of(app))
    name = f"home/originals/{item['sha256'][:2]}/{item['sha256'][2:4]}/{item['sha256']}"
    import io

    client(endpoint).put_object(bucket_name=bucket, object_name=name, data=io.BytesIO(b"cut"), length=3)
    with db.connection():
        run = backup.run(settings, store_of(app))
    assert json.loads(run.detail)["objects_sent"] == 2
    assert hashlib.sha256(raw_object(endpoint, bucket, name)).hexdigest() == item["sha256"]


# ------------------------------------------------------------------ never a mirror
def test_a_deleted_photo_stays_in_the_backup_for_the_retention_period(mom, app, settings, endpoint, bucket):
    keep = mom.upload(media_files.noisy_jpeg(5), "keep.jpg").json["media"]
    gone = mom.upload(media_files.noisy_jpeg(6), "gone.jpg").json["media"]
    with db.connection():
        backup.run(settings, store_of(app))
    mom.delete(f"/api/v1/media/{gone['id']}")
    assert mom.delete(f"/api/v1/trash/{gone['id']}").status_code == 204  # gone for good in Picup
    gone_name = f"home/originals/{gone['sha256'][:2]}/{gone['sha256'][2:4]}/{gone['sha256']}"
    with db.connection():
        run = backup.run(settings, store_of(app))
        assert gone_name in objects(endpoint, bucket), "deleting in Picup does not delete the backup's copy"
        assert json.loads(run.detail)["originals_waiting_removal"] == 1
        BackupGone.update(gone_since=utcnow() - dt.timedelta(days=89)).execute()
        backup.run(settings, store_of(app))
        assert gone_name in objects(endpoint, bucket), "89 days: still kept"
        BackupGone.update(gone_since=utcnow() - dt.timedelta(days=91)).execute()
        run = backup.run(settings, store_of(app))
    names = objects(endpoint, bucket)
    assert gone_name not in names and json.loads(run.detail)["originals_removed"] == 1
    assert f"home/originals/{keep['sha256'][:2]}/{keep['sha256'][2:4]}/{keep['sha256']}" in names


def test_a_new_empty_library_cannot_touch_another_librarys_backup(mom, app, settings, tmp_path):
    mom.upload(media_files.jpeg("blue"), "a.jpg")
    with db.connection():
        backup.run(settings, store_of(app))
    db.database.close()
    other = make_settings(tmp_path / "other", **{k: getattr(settings, k) for k in backup_overrides("", "")})
    other_app = create_app(other)
    Api(other_app).post("/api/v1/setup", json={"username": "x", "password": "correct horse"})
    with db.connection(), pytest.raises(backup.BackupError, match="another Picup library"):
        backup.run(other, store_of(other_app))


def test_snapshots_are_thinned_to_daily_weekly_and_monthly():
    start = dt.datetime(2026, 11, 23, 3, 0)
    names = [f"picup-{(start - dt.timedelta(days=d)):%Y%m%dT%H%M%S}000000Z.db.gz" for d in range(800)]
    keep = backup.snapshots_to_keep(names, daily=14, weekly=8, monthly=12)
    assert names[0] in keep
    assert all(names[d] in keep for d in range(14)), "the last 14 days each"
    assert len(keep) <= 14 + 8 + 12
    ages = sorted((start - dt.datetime.strptime(n[6:21], "%Y%m%dT%H%M%S")).days for n in keep)
    assert ages[-1] >= 300, "a monthly snapshot reaches back about a year"
    assert ages[-1] < 366


def test_old_snapshots_in_the_bucket_are_thinned(mom, app, settings, endpoint, bucket):
    import io

    start = dt.datetime(2025, 1, 1, 3)
    for day in range(60):
        name = f"home/database/picup-{(start + dt.timedelta(days=day)):%Y%m%dT%H%M%S}000000Z.db.gz"
        client(endpoint).put_object(bucket_name=bucket, object_name=name, data=io.BytesIO(b"x"), length=1)
    mom.upload(media_files.jpeg("red"), "a.jpg")
    with db.connection():
        run = backup.run(settings, store_of(app))
    figures = json.loads(run.detail)
    left = [n for n in objects(endpoint, bucket) if n.startswith("home/database/")]
    assert len(left) == figures["snapshots_kept"] < 61 and figures["snapshots_removed"] == 61 - len(left)
    assert f"home/database/{figures['snapshot']}" in left


# ------------------------------------------------------------------ encryption
def encrypted_library(tmp_path, endpoint, bucket):
    """A new library whose backup is encrypted with a fresh key, and its admin signed in."""
    settings = make_settings(tmp_path / "data", **backup_overrides(endpoint, bucket,
                                                                   backup_encryption_key=encryption.new_key()))
    app = create_app(settings)
    mom = Api(app)
    mom.post("/api/v1/setup", json={"username": "mom", "password": "correct horse"})
    mom.sign_in("mom")
    return settings, app, mom


def test_an_encrypted_backup_shows_the_bucket_nothing_and_restores(tmp_path, endpoint, bucket):
    settings, app, mom = encrypted_library(tmp_path, endpoint, bucket)
    content = media_files.noisy_jpeg(7, size=(2400, 1600))  # bigger than one encryption chunk
    assert len(content) > encryption.CHUNK
    item = mom.upload(content, "secret.jpg").json["media"]
    with db.connection():
        backup.run(settings, store_of(app))
    names = objects(endpoint, bucket)
    originals = [n for n in names if n.startswith("home/originals/")]
    assert len(originals) == 1 and item["sha256"] not in originals[0], "names do not reveal the photo's hash"
    stored = raw_object(endpoint, bucket, originals[0])
    assert content[:4096] not in stored and b"JFIF" not in stored[:64]
    assert len(stored) == encryption.sealed_size(len(content))
    snapshot = [n for n in names if n.startswith("home/database/")][0]
    assert snapshot.endswith(".enc") and raw_object(endpoint, bucket, snapshot)[:8] == encryption.MAGIC

    db.database.close()
    shutil.rmtree(settings.data_path)
    wrong = make_settings(tmp_path / "data", **backup_overrides(endpoint, bucket,
                                                                backup_encryption_key=encryption.new_key()))
    with pytest.raises(backup.BackupError, match="not the one"):
        restore.restore(wrong)
    no_key = make_settings(tmp_path / "data", **backup_overrides(endpoint, bucket))
    with pytest.raises(backup.BackupError, match="is encrypted"):
        restore.restore(no_key)
    assert restore.restore(settings).originals == 1
    app2 = create_app(settings)
    assert Api(app2).sign_in("mom").get(f"/api/v1/media/{item['id']}/original").data == content


def test_a_damaged_encrypted_object_is_refused_not_restored(tmp_path, endpoint, bucket):
    import io

    settings, app, mom = encrypted_library(tmp_path, endpoint, bucket)
    item = mom.upload(media_files.noisy_jpeg(8), "x.jpg").json["media"]
    with db.connection():
        backup.run(settings, store_of(app))
    name = next(n for n in objects(endpoint, bucket) if n.startswith("home/originals/"))
    stored = bytearray(raw_object(endpoint, bucket, name))
    stored[len(stored) // 2] ^= 0x01  # one flipped bit in the bucket
    client(endpoint).put_object(bucket_name=bucket, object_name=name, data=io.BytesIO(bytes(stored)), length=len(stored))
    target = backup.open_target(settings)
    dest = tmp_path / "fetched"
    with pytest.raises(backup.BackupError, match="damaged"):
        target.fetch_original(item["sha256"], dest)
    assert not dest.exists()


# ------------------------------------------------------------------ faults
@pytest.mark.parametrize("encrypted", [False, True], ids=["plain", "encrypted"])
def test_a_damaged_original_is_not_backed_up_and_does_not_hold_back_the_rest(tmp_path, endpoint, bucket,
                                                                             encrypted):
    """Bit rot on the box before its first backup (an SD card, a tired disk): sending those bytes
    would put a damaged copy in the bucket under the good one's name, counted as done for ever.
    Nothing the backup can mend: the rest and the database go, tonight's check reports it."""
    if encrypted:
        settings, app, mom = encrypted_library(tmp_path, endpoint, bucket)
    else:
        settings = make_settings(tmp_path / "data", **backup_overrides(endpoint, bucket))
        app = create_app(settings)
        mom = Api(app)
        mom.post("/api/v1/setup", json={"username": "mom", "password": "correct horse"})
        mom.sign_in("mom")
    items = [mom.upload(media_files.noisy_jpeg(n), f"{n}.jpg").json["media"] for n in (31, 32, 33)]
    rotten = items[-1]  # the rolling check would come to it last
    with db.connection():  # the whole library was checked yesterday; the bit flipped since
        Media.update(checked_at=utcnow()).execute()
    path = settings.storage_root / storage.blob_key(rotten["sha256"])
    path.chmod(0o644)
    data = bytearray(path.read_bytes())
    data[300] ^= 0x01
    path.write_bytes(data)
    target = backup.open_target(settings)
    with db.connection():
        run = backup.run(settings, store_of(app))
    assert run.status == "ok"
    figures = json.loads(run.detail)
    assert figures["originals_not_sent"] == [
        {"sha256": rotten["sha256"], "problem": "is damaged (its bytes no longer match its checksum)"}]
    assert figures["objects_total"] == 2, "the one left out is not counted as in the backup"
    sent = objects(endpoint, bucket)
    assert target.original_name(rotten["sha256"]) not in sent
    assert all(target.original_name(item["sha256"]) in sent for item in items[:-1])
    assert [name for name in sent if name.startswith("home/database/")], "the database is backed up"
    with db.connection():
        checked = integrity.run(settings, store_of(app))
    assert checked.problems == 1 and "damaged" in integrity.summary(checked)


def test_a_backup_server_that_is_down_fails_loudly_and_the_next_run_catches_up(
        mom, app, settings, endpoint, bucket, caplog):
    mom.upload(media_files.noisy_jpeg(9), "a.jpg")
    host, port = endpoint.split(":")
    with TcpProxy(int(port)) as proxy:
        settings.backup_endpoint = proxy.address
        proxy.mode = "refuse"
        with caplog.at_level(logging.INFO), db.connection(), pytest.raises(backup.BackupError, match="reached"):
            backup.run(settings, store_of(app))
        with db.connection():
            failed = jobs.last("backup")
        assert failed.status == "failed" and "could not be reached" in failed.error
        assert SECRET_KEY not in caplog.text and SECRET_KEY not in failed.error
        assert not [n for n in objects(endpoint, bucket) if "/originals/" in n]
        proxy.mode = "pass"
        with db.connection():
            assert backup.run(settings, store_of(app)).status == "ok"
    assert [n for n in objects(endpoint, bucket) if "/originals/" in n]


def big_original(mom, app, settings, seed: int) -> str:
    """A 20 MB original (sent in two parts, as a phone's video is): its SHA-256.
    The store takes any bytes put_file is given: the backup does not care what the original is."""
    big = secrets.token_bytes(20 * 1024 * 1024)
    with db.connection():
        item = mom.upload(media_files.noisy_jpeg(seed), "a.jpg").json["media"]
    path = settings.tmp_path / "big"
    path.write_bytes(big)
    sha = hashlib.sha256(big).hexdigest()
    store_of(app).put_file(str(path), sha256=sha)
    with db.connection():
        Media.update(sha256=sha, size=len(big)).where(Media.id == item["id"]).execute()
    return sha


def test_a_connection_cut_mid_upload_leaves_no_object_counted_as_done(mom, app, settings, endpoint, bucket):
    """A 20 MB video cut after 6 MB: no object under its name; the next run sends it whole."""
    store = store_of(app)
    sha = big_original(mom, app, settings, 10)
    host, port = endpoint.split(":")
    with TcpProxy(int(port)) as proxy:
        settings.backup_endpoint = proxy.address
        settings.backup_timeout = 5
        proxy.mode = "cut"
        proxy.cut_after = 6 * 1024 * 1024
        with db.connection(), pytest.raises(backup.BackupError):
            backup.run(settings, store)
        name = f"home/originals/{sha[:2]}/{sha[2:4]}/{sha}"
        assert name not in objects(endpoint, bucket)
        assert not list(client(endpoint).list_objects(bucket_name=bucket, prefix="home/database/"))
        proxy.mode = "pass"
        with db.connection():
            run = backup.run(settings, store)
    assert run.status == "ok"
    assert hashlib.sha256(raw_object(endpoint, bucket, name)).hexdigest() == sha


def test_busy_answers_from_the_server_are_tried_again(mom, app, settings, endpoint, bucket):
    """B2 answers 503 now and then by design, AWS "503 SlowDown" under load. A big video's
    upload starts and ends with a POST, which the HTTP library did not send again."""
    sha = big_original(mom, app, settings, 11)
    host, port = endpoint.split(":")
    with FaultyS3(int(port)) as s3:
        settings.backup_endpoint = s3.address
        s3.fail("POST", "uploads")  # create the multipart upload
        s3.fail("PUT", "partNumber", code="SlowDown")
        s3.fail("POST", "uploadId", status=500, code="InternalError")  # complete it
        with db.connection():
            run = backup.run(settings, store_of(app))
    assert [method for method, _path in s3.answered] == ["POST", "PUT", "POST"], "each fault was met"
    assert run.status == "ok"
    assert hashlib.sha256(raw_object(endpoint, bucket, original_name(sha))).hexdigest() == sha


@pytest.mark.parametrize("damage", ["flipped bit", "cut short"])
@pytest.mark.parametrize("encrypted", [False, True], ids=["plain", "encrypted"])
def test_a_damaged_video_is_stopped_before_its_upload_completes(tmp_path, endpoint, bucket, encrypted, damage):
    """Each original is read once, hashed on its way out: a damaged one is caught at its last
    bytes, before the request that would make the object exist, so not even a crash at that
    moment could leave it in the bucket under the good copy's name."""
    overrides = backup_overrides(endpoint, bucket)
    if encrypted:
        overrides["backup_encryption_key"] = encryption.new_key()
    settings = make_settings(tmp_path / "data", **overrides)
    app = create_app(settings)
    mom = Api(app)
    mom.post("/api/v1/setup", json={"username": "mom", "password": "correct horse"})
    mom.sign_in("mom")
    sha = big_original(mom, app, settings, 12)
    path = settings.storage_root / storage.blob_key(sha)
    path.chmod(0o644)
    with open(path, "r+b") as fh:  # in the second part
        if damage == "cut short":
            fh.truncate(18 * 1024 * 1024)
        else:
            fh.seek(18 * 1024 * 1024)
            byte = fh.read(1)
            fh.seek(18 * 1024 * 1024)
            fh.write(bytes([byte[0] ^ 0x01]))
    host, port = endpoint.split(":")
    with FaultyS3(int(port)) as s3:
        settings.backup_endpoint = s3.address
        with db.connection():
            run = backup.run(settings, store_of(app))
    assert run.status == "ok"
    [not_sent] = json.loads(run.detail)["originals_not_sent"]
    assert not_sent["sha256"] == sha and "no longer match its checksum" in not_sent["problem"]
    assert ("shorter" in not_sent["problem"]) == (damage == "cut short")
    name = backup.open_target(settings).original_name(sha)  # encrypted backups do not show the hash
    about_it = [(method, urlsplit(where).query) for method, where in s3.seen if urlsplit(where).path.endswith(name)]
    assert ("POST", "uploads=") in about_it, "the upload had begun"
    assert not [(m, q) for m, q in about_it if (m == "POST" and "uploadId" in q) or (m == "PUT" and not q)], \
        "never completed"
    assert name not in objects(endpoint, bucket)


def not_md5_etags(chunk: bytes) -> bytes:
    """What AWS and MinIO answer for an object under SSE-KMS or SSE-C: an ETag of 32 hex digits that is not
    the MD5 of its bytes. moto does not encrypt, so the proxy turns moto's (MD5) ETags around instead."""
    return re.sub(rb'(?i)(etag: *")([0-9a-f]{32})', lambda m: m.group(1) + m.group(2)[::-1], chunk)


def original_name(sha256: str) -> str:
    return f"home/originals/{sha256[:2]}/{sha256[2:4]}/{sha256}"


def test_a_bucket_whose_etags_are_not_checksums_is_backed_up_by_reading_back(mom, app, settings, endpoint,
                                                                               bucket):
    """An encrypted AWS or MinIO bucket used to fail every night with "checksum does not match"."""
    items = [mom.upload(media_files.noisy_jpeg(n), f"{n}.jpg").json["media"] for n in (21, 22)]
    host, port = endpoint.split(":")
    with TcpProxy(int(port)) as proxy:
        proxy.downstream = not_md5_etags
        settings.backup_endpoint = proxy.address
        with db.connection():
            run = backup.run(settings, store_of(app))
    figures = json.loads(run.detail)
    assert run.status == "ok"
    assert figures["objects_sent"] == 3  # two photos and the database
    assert figures["objects_read_back"] == 3
    for item in items:
        assert hashlib.sha256(raw_object(endpoint, bucket, original_name(item["sha256"]))).hexdigest() == \
            item["sha256"]


def test_what_the_server_holds_differently_is_removed_and_sent_again(mom, app, settings, endpoint, bucket):
    """The read-back is a real check: bytes that come back changed fail the run and leave nothing counted."""
    marked = io.BytesIO()
    Image.open(io.BytesIO(media_files.noisy_jpeg(23))).save(marked, "JPEG", quality=90, comment=b"picup-marker")
    item = mom.upload(marked.getvalue(), "marked.jpg").json["media"]
    host, port = endpoint.split(":")
    with TcpProxy(int(port)) as proxy:
        proxy.downstream = lambda chunk: not_md5_etags(chunk).replace(b"picup-marker", b"picup-MARKER")
        settings.backup_endpoint = proxy.address
        with db.connection(), pytest.raises(backup.BackupError) as failed:
            backup.run(settings, store_of(app))
        assert str(failed.value) == f"s3://{bucket}/{original_name(item['sha256'])}: what the server holds is " \
            "not what was sent"
        assert original_name(item["sha256"]) not in objects(endpoint, bucket)
        assert not list(client(endpoint).list_objects(bucket_name=bucket, prefix="home/database/"))
        with db.connection():
            assert jobs.last("backup").status == "failed"
        proxy.downstream = None
        with db.connection():
            assert backup.run(settings, store_of(app)).status == "ok"
    assert hashlib.sha256(raw_object(endpoint, bucket, original_name(item["sha256"]))).hexdigest() == item["sha256"]


def test_a_server_that_stops_answering_times_out_and_fails(mom, app, settings):
    mom.upload(media_files.jpeg("red"), "a.jpg")
    with TcpProxy(1) as proxy:
        proxy.mode = "stall"
        settings.backup_endpoint = proxy.address
        settings.backup_timeout = 2
        with db.connection(), pytest.raises(backup.BackupError, match="reached"):
            backup.run(settings, store_of(app))
        with db.connection():
            assert jobs.last("backup").status == "failed"


def test_kill_9_mid_backup_then_the_next_run_completes_it(tmp_path, endpoint, bucket):
    """``picup backup`` killed mid-transfer, at a random byte of what it sends; afterwards every original is
    there, whole. The proxy hangs the link at that byte, so the kill lands mid-way on a fast machine too."""
    import random

    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    host, port = endpoint.split(":")
    with TcpProxy(int(port)) as proxy:
        data = tmp_path / "data"
        env = {"PICUP_DATA_DIR": str(data), "PICUP_BACKUP_ENDPOINT": proxy.address, "PICUP_BACKUP_BUCKET": bucket,
               "PICUP_BACKUP_PREFIX": "home", "PICUP_BACKUP_ACCESS_KEY": ACCESS_KEY,
               "PICUP_BACKUP_SECRET_KEY": SECRET_KEY, "PICUP_BACKUP_SECURE": "false", "PICUP_BACKUP_REGION": REGION,
               "PATH": "/usr/bin:/bin"}
        settings = make_settings(data, **backup_overrides(proxy.address, bucket))
        app = create_app(settings)
        mom = Api(app)
        mom.post("/api/v1/setup", json={"username": "mom", "password": "correct horse"})
        mom.sign_in("mom")
        hashes, library_bytes = set(), 0
        for n in range(12):
            photo = media_files.noisy_jpeg(100 + n, size=(1200, 900))
            hashes.add(mom.upload(photo, f"{n}.jpg").json["media"]["sha256"])
            library_bytes += len(photo)
        db.database.close()
        kills = []  # bytes that had gone upstream when each run was killed
        for attempt in range(4):
            proxy.reset(hold_after=rng.randrange(library_bytes // 20, library_bytes * 9 // 10))
            process = subprocess.Popen([PICUP, "backup"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            wait_for(lambda: proxy.held.is_set() or process.poll() is not None, 120, "the backup to reach the hold")
            if process.poll() is None:
                process.kill()
                kills.append(proxy.forwarded)
            process.wait()
        # The first run had more to send than the hold let through, so at least that one was cut off.
        assert kills, f"no run was killed mid-way (seed {seed})"
        proxy.reset()
        done = subprocess.run([PICUP, "backup"], env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        assert "Backup done" in done.stdout
    names = objects(endpoint, bucket)
    for sha in hashes:
        name = f"home/originals/{sha[:2]}/{sha[2:4]}/{sha}"
        assert hashlib.sha256(raw_object(endpoint, bucket, name)).hexdigest() == sha, f"seed {seed}"
    assert not [n for n in names if "/originals/" in n and n.rsplit("/", 1)[-1] not in hashes], f"seed {seed}"
    with db.connection():
        runs = list(JobRun.select().where(JobRun.kind == "backup").order_by(JobRun.id))
    assert runs[-1].status == "ok"
    assert all(r.status == "failed" and "interrupted" in r.error for r in runs[:-1] if r.status != "ok"), f"seed {seed}"


def test_two_backups_never_run_at_once(mom, app, settings):
    mom.upload(media_files.jpeg("red"), "a.jpg")
    with jobs.exclusive(settings, "backup"), db.connection(), pytest.raises(jobs.JobBusy):
        backup.run(settings, store_of(app))


def test_no_backup_without_the_store_marker(mom, app, settings, endpoint, bucket):
    mom.upload(media_files.jpeg("red"), "a.jpg")
    marker = settings.storage_root / storage.MARKER_NAME
    marker.chmod(0o644)
    marker.unlink()
    with db.connection(), pytest.raises(backup.BackupError, match="marker"):
        backup.run(settings, store_of(app))
    assert not objects(endpoint, bucket)


# ------------------------------------------------------------------ command line
def test_picup_backup_and_restore_on_the_command_line(tmp_path, endpoint, bucket):
    data = tmp_path / "data"
    env = {"PICUP_BACKUP_ENDPOINT": endpoint, "PICUP_BACKUP_BUCKET": bucket, "PICUP_BACKUP_ACCESS_KEY": ACCESS_KEY,
           "PICUP_BACKUP_SECRET_KEY": SECRET_KEY, "PICUP_BACKUP_SECURE": "false", "PICUP_BACKUP_REGION": REGION,
           "PATH": "/usr/bin:/bin"}
    settings = make_settings(data, **backup_overrides(endpoint, bucket, backup_prefix=""))
    app = create_app(settings)
    mom = Api(app)
    mom.post("/api/v1/setup", json={"username": "mom", "password": "correct horse"})
    mom.sign_in("mom")
    content = media_files.noisy_jpeg(11)
    mom.upload(content, "a.jpg")
    db.database.close()

    done = subprocess.run([PICUP, "backup", "--data", str(data)], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "Backup done: 2 new objects" in done.stdout and SECRET_KEY not in done.stdout + done.stderr
    listed = subprocess.run([PICUP, "backup", "--list", "--data", str(data)], env=env, capture_output=True, text=True)
    assert listed.stdout.startswith("picup-") and listed.returncode == 0

    refused = subprocess.run([PICUP, "restore", "--data", str(data)], env=env, capture_output=True, text=True)
    assert refused.returncode == 1 and "already holds a library" in refused.stderr

    fresh = tmp_path / "fresh"
    restored = subprocess.run([PICUP, "restore", "--data", str(fresh)], env=env, capture_output=True, text=True)
    assert restored.returncode == 0, restored.stderr
    assert "1 originals fetched" in restored.stdout
    blob = fresh / "library" / storage.blob_key(hashlib.sha256(content).hexdigest())
    assert blob.read_bytes() == content

    key = subprocess.run([PICUP, "backup", "--new-key"], env=env, capture_output=True, text=True)
    assert len(encryption.parse_key(key.stdout.strip())) == 32


def test_the_worker_backs_up_nightly_catches_up_and_retries_hourly(app, settings):
    night = dt.datetime(2026, 11, 23, settings.nightly_hour, 5)
    noon = night.replace(hour=12)

    def ran(status, hours_ago):
        JobRun.create(kind="backup", status=status, started_at=utcnow() - dt.timedelta(hours=hours_ago),
                      finished_at=utcnow() - dt.timedelta(hours=hours_ago))

    with db.connection():
        assert backup.due(settings, noon), "never backed up: at once"
        ran("ok", 21)
        assert backup.due(settings, night) and not backup.due(settings, noon)
        ran("ok", 2)
        assert not backup.due(settings, night), "already done tonight"
        JobRun.delete().execute()
        ran("ok", 30)
        assert backup.due(settings, noon), "the box was off last night: catch up"
        ran("failed", 0.5)
        assert not backup.due(settings, noon), "a failed run is tried again after an hour, not at once"
        JobRun.delete().where(JobRun.status == "failed").execute()
        ran("ok", 22)
        ran("failed", 1.5)
        assert backup.due(settings, noon), "an hour after a failure"
    settings.backup_endpoint = settings.backup_bucket = ""
    with db.connection():
        assert not backup.due(settings, night), "no backup set up: nothing to do"
