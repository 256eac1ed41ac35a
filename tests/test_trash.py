"""Deleting goes to the trash; only purge deletes bytes, and never from a store it cannot vouch for."""

import datetime as dt
import subprocess
import sys
from pathlib import Path

import pytest

from picup import create_app, db, storage, worker
from picup.models import Media, utcnow
from tests import media_files
from tests.conftest import make_settings


def blob_path(settings, sha256):
    return settings.storage_root / storage.blob_key(sha256)


def age_trash(media_id: int, days: int) -> None:
    with db.connection():
        Media.update(trashed_at=utcnow() - dt.timedelta(days=days)).where(Media.id == media_id).execute()


@pytest.fixture
def photo(mom):
    return mom.upload(media_files.jpeg("orange"), "orange.jpg").json["media"]


def test_delete_moves_to_the_trash_and_restore_brings_it_back(mom, photo, settings):
    trashed = mom.delete(f"/api/v1/media/{photo['id']}")
    assert trashed.status_code == 200
    purge_at = dt.datetime.fromisoformat(trashed.json["media"]["purge_at"].replace("Z", "+00:00"))
    assert dt.timedelta(days=29, hours=23) < purge_at - dt.datetime.now(dt.UTC) <= dt.timedelta(days=30)
    assert mom.get("/api/v1/media").json["items"] == []
    trash = mom.get("/api/v1/trash").json
    assert [m["id"] for m in trash["items"]] == [photo["id"]] and trash["trash_days"] == 30
    assert blob_path(settings, photo["sha256"]).exists(), "trash keeps the bytes"
    restored = mom.post(f"/api/v1/media/{photo['id']}/restore")
    assert restored.status_code == 200 and restored.json["media"]["trashed_at"] is None
    assert [m["id"] for m in mom.get("/api/v1/media").json["items"]] == [photo["id"]]
    assert mom.get("/api/v1/trash").json["items"] == []


def test_uploading_a_trashed_photo_again_brings_it_back(mom, photo):
    mom.delete(f"/api/v1/media/{photo['id']}")
    again = mom.upload(media_files.jpeg("orange"), "orange.jpg")
    assert again.status_code == 200 and again.json["duplicate"] is True
    assert again.json["restored_from_trash"] is True
    assert [m["id"] for m in mom.get("/api/v1/media").json["items"]] == [photo["id"]]


def test_empty_one_item_from_the_trash(mom, photo, settings):
    assert mom.delete(f"/api/v1/trash/{photo['id']}").status_code == 404, "only trashed items"
    mom.delete(f"/api/v1/media/{photo['id']}")
    assert mom.delete(f"/api/v1/trash/{photo['id']}").status_code == 204
    assert mom.get("/api/v1/trash").json["items"] == []
    assert not blob_path(settings, photo["sha256"]).exists()
    assert mom.post(f"/api/v1/media/{photo['id']}/restore").status_code == 404


def test_bytes_someone_else_keeps_are_never_deleted(family, settings):
    content = media_files.jpeg("teal")
    mine = family.admin.upload(content).json["media"]
    family.member("dad").upload(content)
    family.admin.delete(f"/api/v1/media/{mine['id']}")
    assert family.admin.delete(f"/api/v1/trash/{mine['id']}").status_code == 204
    assert blob_path(settings, mine["sha256"]).exists()


def test_purge_removes_only_what_is_older_than_the_trash_period(mom, settings, app):
    old = mom.upload(media_files.jpeg("navy"), "old.jpg").json["media"]
    recent = mom.upload(media_files.jpeg("lime"), "recent.jpg").json["media"]
    kept = mom.upload(media_files.jpeg("pink"), "kept.jpg").json["media"]
    for media in (old, recent):
        mom.delete(f"/api/v1/media/{media['id']}")
    age_trash(old["id"], 31)
    age_trash(recent["id"], 29)
    assert worker.purge_trash(app.extensions["picup"].store, settings) == 1
    assert not blob_path(settings, old["sha256"]).exists()
    assert blob_path(settings, recent["sha256"]).exists() and blob_path(settings, kept["sha256"]).exists()
    assert [m["id"] for m in mom.get("/api/v1/trash").json["items"]] == [recent["id"]]


def test_purge_refuses_to_delete_when_the_store_marker_is_missing(mom, photo, settings, app):
    mom.delete(f"/api/v1/media/{photo['id']}")
    age_trash(photo["id"], 40)
    (settings.storage_root / storage.MARKER_NAME).unlink()  # as if the NFS share were not mounted
    with pytest.raises(storage.StoreUnavailable):
        worker.purge_trash(app.extensions["picup"].store, settings)
    assert blob_path(settings, photo["sha256"]).exists()
    assert [m["id"] for m in mom.get("/api/v1/trash").json["items"]] == [photo["id"]]
    assert mom.get("/readyz").status_code == 503


def test_an_unmounted_store_is_an_outage_not_an_empty_library(mom, photo, settings, tmp_path):
    empty_mount = tmp_path / "nas"  # the mount point, with nothing mounted on it
    empty_mount.mkdir()
    unmounted = make_settings(settings.data_path, storage_path=str(empty_mount))
    with pytest.raises(storage.StoreUnavailable, match="is the disk or share mounted"):
        create_app(unmounted)
    assert list(empty_mount.iterdir()) == [], "nothing is written to the empty mount point"
    picup = Path(sys.executable).parent / "picup"
    result = subprocess.run([str(picup), "serve", "--data", str(settings.data_path)], capture_output=True,
                            text=True, env={"PICUP_STORAGE_PATH": str(empty_mount), "PATH": "/usr/bin:/bin"},
                            timeout=30)
    assert result.returncode == 1
    assert "Picup will not start" in result.stderr and "mounted" in result.stderr
