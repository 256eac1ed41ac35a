"""Adding photos and videos, the timeline, and getting originals back byte for byte."""

import hashlib
import os
import subprocess
from pathlib import Path

import pytest

from picup import config, create_app, db
from picup.models import Media
from tests import media_files
from tests.conftest import Api, make_settings


def leftovers(settings) -> list[str]:
    """Temporary files anywhere Picup writes: there must be none after a request."""
    found = []
    for folder in (settings.tmp_path, settings.storage_root / ".incoming"):
        if folder.exists():
            found += [str(p) for p in folder.rglob("*") if p.is_file()]
    return found


def originals(settings) -> list[Path]:
    folder = settings.storage_root / "originals"
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


ACCEPTED = [
    ("photo.jpg", lambda: media_files.jpeg(), "image/jpeg", "photo"),
    ("photo.png", lambda: media_files.image("PNG"), "image/png", "photo"),
    ("photo.gif", lambda: media_files.image("GIF"), "image/gif", "photo"),
    ("photo.webp", lambda: media_files.image("WEBP"), "image/webp", "photo"),
    ("IMG_0001.HEIC", lambda: media_files.image("HEIF"), "image/heic", "photo"),
    ("photo.avif", lambda: media_files.image("AVIF"), "image/avif", "photo"),
    ("clip.mp4", lambda: media_files.video("mp4"), "video/mp4", "video"),
    ("clip.mov", lambda: media_files.video("mov"), "video/quicktime", "video"),
    ("clip.mkv", lambda: media_files.video("mkv"), "video/x-matroska", "video"),
    ("clip.webm", lambda: media_files.video("webm", codec="libvpx"), "video/webm", "video"),
    ("clip.avi", lambda: media_files.video("avi", codec="mpeg4"), "video/x-msvideo", "video"),
    ("clip.3gp", lambda: media_files.video("3gp", codec="mpeg4", size=(176, 144)), "video/3gpp", "video"),
]


@pytest.mark.parametrize("filename, make, media_type, kind", ACCEPTED, ids=[a[0] for a in ACCEPTED])
def test_every_accepted_format_is_kept(mom, settings, filename, make, media_type, kind):
    content = make()
    response = mom.upload(content, filename)
    assert response.status_code == 201, response.json
    media = response.json["media"]
    assert (media["media_type"], media["kind"], media["filename"]) == (media_type, kind, filename)
    assert media["sha256"] == hashlib.sha256(content).hexdigest()
    assert mom.get(media["urls"]["original"]).data == content
    assert leftovers(settings) == []


def test_m4v_from_an_apple_device_is_a_video(mom):
    content = media_files.video("mp4")
    # An iTunes-style .m4v carries the "M4V " brand in its ftyp box.
    m4v = content[:8] + b"M4V " + content[12:]
    assert mom.upload(m4v, "film.m4v").json["media"]["media_type"] == "video/x-m4v"


def test_type_comes_from_the_bytes_not_the_name(mom, settings):
    photo = mom.upload(media_files.jpeg(), "holiday.mp4")
    assert photo.status_code == 201
    assert photo.json["media"]["kind"] == "photo" and photo.json["media"]["media_type"] == "image/jpeg"
    fake = mom.upload(b"#!/bin/sh\nrm -rf /\n" * 10, "beach.jpg")
    assert fake.status_code == 415
    assert fake.json["error"] == {"code": "unsupported_type",
                                  "message": '"beach.jpg" is not a photo or video Picup can keep.'}
    assert leftovers(settings) == []
    assert len(originals(settings)) == 1
    with db.connection():
        assert Media.select().count() == 1


def test_same_photo_twice_is_kept_once(mom, settings):
    content = media_files.jpeg("green")
    first = mom.upload(content, "a.jpg")
    again = mom.upload(content, "copy of a.jpg")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json["duplicate"] is True
    assert again.json["media"]["id"] == first.json["media"]["id"]
    assert len(originals(settings)) == 1
    assert leftovers(settings) == []


def test_two_family_members_with_the_same_photo_each_have_it(family, settings):
    content = media_files.jpeg("purple")
    dad = family.member("dad")
    mine = family.admin.upload(content).json["media"]
    his = dad.upload(content).json["media"]
    assert mine["id"] != his["id"]
    assert len(originals(settings)) == 1  # one copy of the bytes on disk


def test_empty_and_too_large_bodies_are_refused_and_leave_nothing(tmp_path):
    settings = make_settings(tmp_path / "data", raw_upload_limit="1K")
    app = create_app(settings)
    mom = Api(app)
    mom.post("/api/v1/setup", json={"username": "mom", "password": "correct horse"})
    mom.sign_in("mom")
    big = mom.upload(media_files.noisy_jpeg(1), "big.jpg")
    assert big.status_code == 413 and big.json["error"]["code"] == "too_large"
    assert "1.0 KiB" in big.json["error"]["message"]
    empty = mom.upload(b"", "empty.jpg")
    assert empty.status_code == 400 and empty.json["error"]["code"] == "empty_file"
    assert leftovers(settings) == [] and originals(settings) == []


def test_upload_into_an_album_needs_the_right_to_add(family):
    album = family.admin.post("/api/v1/albums", json={"title": "Wedding"}).json["album"]
    added = family.admin.upload(media_files.jpeg("white"), "w.jpg", album=album["id"])
    assert added.status_code == 201
    listing = family.admin.get(f"/api/v1/media?album={album['id']}").json["items"]
    assert [m["id"] for m in listing] == [added.json["media"]["id"]]
    dad = family.member("dad")
    assert dad.upload(media_files.jpeg("black"), "b.jpg", album=album["id"]).status_code == 404


# ------------------------------------------------------------------ timeline
def test_timeline_is_ordered_by_date_taken_not_upload_time(mom):
    old = mom.upload(media_files.jpeg("red", taken="1998:08:15 09:30:00"), "scan.jpg").json["media"]
    new = mom.upload(media_files.jpeg("blue", taken="2024:05:05 12:00:00", offset="+09:00"), "kid.jpg")
    new = new.json["media"]
    undated = mom.upload(media_files.image("PNG"), "screenshot.png").json["media"]
    assert old["taken_at"] == "1998-08-15T09:30:00Z" and old["taken_at_source"] == "exif"
    assert new["taken_at"] == "2024-05-05T03:00:00Z"  # 12:00 in Seoul is 03:00 UTC
    assert undated["taken_at_source"] == "upload"
    items = mom.get("/api/v1/media").json["items"]
    assert [m["id"] for m in items] == [undated["id"], new["id"], old["id"]]


def test_the_date_a_browser_reports_for_the_file_is_used_when_exif_has_none(mom):
    media = mom.upload(media_files.image("PNG"), "p.png", last_modified=1_000_000_000_000).json["media"]
    assert (media["taken_at"], media["taken_at_source"]) == ("2001-09-09T01:46:40Z", "file")


def test_timeline_pages_with_a_cursor_without_gaps_or_repeats(mom):
    ids = set()
    for day in range(1, 13):
        for hour in (10, 10, 11):  # several photos share a time: the id breaks the tie
            content = media_files.jpeg((day * 20, hour, len(ids)), taken=f"2020:03:{day:02d} {hour}:00:00")
            ids.add(mom.upload(content, f"{day}.jpg").json["media"]["id"])
    seen, cursor = [], None
    while True:
        page = mom.get("/api/v1/media?limit=5" + (f"&cursor={cursor}" if cursor else "")).json
        seen += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert sorted(m["id"] for m in seen) == sorted(ids)
    keys = [(m["taken_at"], m["id"]) for m in seen]
    assert keys == sorted(keys, reverse=True)


def test_a_broken_cursor_is_a_clear_error(mom):
    response = mom.get("/api/v1/media?cursor=not-a-cursor")
    assert response.status_code == 400 and response.json["error"]["code"] == "bad_cursor"


# ------------------------------------------------------------------- serving
@pytest.fixture
def photo(mom):
    content = media_files.noisy_jpeg(7)
    media = mom.upload(content, "할머니 생신 2024.jpg").json["media"]
    return media, content


def test_original_comes_back_byte_for_byte_with_its_name(mom, photo):
    media, content = photo
    response = mom.get(media["urls"]["original"])
    assert response.status_code == 200 and response.data == content
    assert response.headers["Content-Type"] == "image/jpeg"
    assert response.headers["Content-Disposition"] == (
        "inline; filename=\"___ __ 2024.jpg\"; "
        "filename*=UTF-8''%ED%95%A0%EB%A8%B8%EB%8B%88%20%EC%83%9D%EC%8B%A0%202024.jpg")
    assert response.headers["ETag"] == f'"{media["sha256"]}"'
    assert "immutable" in response.headers["Cache-Control"]
    download = mom.get(media["urls"]["original"] + "?download=1")
    assert download.headers["Content-Disposition"].startswith("attachment;")


def test_ranges_let_a_player_seek(mom, photo):
    media, content = photo
    url = media["urls"]["original"]
    middle = mom.get(url, headers={"Range": "bytes=100-199"})
    assert middle.status_code == 206 and middle.data == content[100:200]
    assert middle.headers["Content-Range"] == f"bytes 100-199/{len(content)}"
    tail = mom.get(url, headers={"Range": "bytes=-10"})
    assert tail.status_code == 206 and tail.data == content[-10:]
    rest = mom.get(url, headers={"Range": f"bytes={len(content) - 5}-"})
    assert rest.data == content[-5:]
    beyond = mom.get(url, headers={"Range": f"bytes={len(content) + 10}-"})
    assert beyond.status_code == 416 and beyond.headers["Content-Range"] == f"bytes */{len(content)}"
    stale = mom.get(url, headers={"Range": "bytes=0-9", "If-Range": '"something-else"'})
    assert stale.status_code == 200 and stale.data == content


def test_a_cached_copy_is_confirmed_without_sending_it_again(mom, photo):
    media, _ = photo
    response = mom.get(media["urls"]["original"], headers={"If-None-Match": f'"{media["sha256"]}"'})
    assert response.status_code == 304 and response.data == b""


def test_renditions_wait_for_the_media_pipeline(mom, photo):
    media, _ = photo
    response = mom.get(media["urls"]["thumb"])
    assert response.status_code == 404 and response.json["error"]["code"] == "not_ready"


def test_nobody_else_sees_a_photo_that_is_not_shared(family, photo):
    media, _ = photo
    dad = family.member("dad")
    for path in (f"/api/v1/media/{media['id']}", media["urls"]["original"]):
        response = dad.get(path)
        assert response.status_code == 404, path
    assert dad.get("/api/v1/media").json["items"] == []
    assert dad.delete(f"/api/v1/media/{media['id']}").status_code == 404


# --------------------------------------------------------------- disk full
@pytest.fixture
def tiny_disk(tmp_path):
    """A real 2 MiB filesystem (tmpfs) that fills up. Needs root, as CI and our machines run."""
    mountpoint = tmp_path / "tiny"
    mountpoint.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mountpoint)],
                            capture_output=True, text=True)
    assert result.returncode == 0, f"this test mounts a small tmpfs and needs root: {result.stderr}"
    yield mountpoint
    subprocess.run(["umount", "-l", str(mountpoint)], check=True)


def _big_photo() -> bytes:
    return media_files.jpeg() + os.urandom(3 * 1024 * 1024)  # a JPEG with 3 MiB of trailing data


@pytest.mark.parametrize("full", ["uploads folder", "photo library"])
def test_a_full_disk_is_told_plainly_and_leaves_nothing(tmp_path, tiny_disk, full):
    overrides = {"tmp_dir": str(tiny_disk)} if full == "uploads folder" else {"storage_path": str(tiny_disk)}
    settings = config.load({"data_dir": str(tmp_path / "data"), **overrides}, environ={})
    app = create_app(settings)
    mom = Api(app, lang="ko")
    mom.post("/api/v1/setup", json={"username": "mom", "password": "correct horse"})
    mom.sign_in("mom")
    response = mom.upload(_big_photo(), "big.jpg")
    assert response.status_code == 507
    assert response.json["error"]["code"] == "storage_full"
    assert response.json["error"]["message"].startswith("저장 공간이 가득 찼습니다.")
    assert leftovers(settings) == [] and originals(settings) == []
    with db.connection():
        assert Media.select().count() == 0
    # and once there is room again, the same photo goes in
    small = mom.upload(media_files.jpeg(), "small.jpg")
    assert small.status_code == 201


# Found by the scanner run (docs/security.md, "Scanner run").
TOO_BIG = 2**63  # one past SQLite's largest integer


def test_an_id_too_big_for_the_database_is_not_found(mom, photo):
    for method, path in [("GET", f"/api/v1/media/{TOO_BIG}"), ("DELETE", f"/api/v1/media/{TOO_BIG}"),
                         ("GET", f"/api/v1/media/{TOO_BIG}/original"), ("GET", f"/api/v1/media/{TOO_BIG}/thumb"),
                         ("PUT", f"/api/v1/media/{TOO_BIG}/favorite"), ("POST", f"/api/v1/media/{TOO_BIG}/restore"),
                         ("DELETE", f"/api/v1/trash/{TOO_BIG}"), ("GET", f"/api/v1/media?album={TOO_BIG}")]:
        response = mom.request(method, path)
        assert response.status_code == 404 and response.json["error"]["code"] == "not_found", path  # was 500
    refused = mom.upload(media_files.jpeg("gold"), "new.jpg", album=TOO_BIG)
    assert refused.status_code == 404 and len(mom.get("/api/v1/media").json["items"]) == 1


@pytest.mark.parametrize("query, field", [("limit=%C2%B2", "limit"), ("album=%C2%B2", "album")])
def test_digits_that_are_not_ascii_are_an_invalid_value(mom, query, field):
    response = mom.get(f"/api/v1/media?{query}")  # "²".isdigit() is True, int("²") fails: was 500
    assert response.status_code == 400
    assert response.json["error"] == {"code": "invalid_value", "message": f'The value of "{field}" is not valid.'}


def test_a_range_past_the_end_answers_the_json_error(mom, photo):
    from picup import i18n

    media, content = photo
    for lang in ("en", "ko"):
        past_the_end = {"Range": f"bytes={len(content)}-", "Accept-Language": lang}
        beyond = mom.get(media["urls"]["original"], headers=past_the_end)
        assert beyond.status_code == 416 and beyond.headers["Content-Range"] == f"bytes */{len(content)}"
        assert beyond.mimetype == "application/json", "was an empty text/html body"
        assert beyond.json["error"] == {"code": "range_not_satisfiable",
                                        "message": i18n.translate("errors.range_not_satisfiable", lang)}
    assert i18n.translate("errors.range_not_satisfiable", "en") == "That part of the file does not exist."
    head = mom.request("HEAD", media["urls"]["original"], headers={"Range": f"bytes={len(content)}-"})
    assert head.status_code == 416 and head.data == b""
