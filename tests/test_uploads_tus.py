"""Resumable uploads over tus 1.0 at /api/v1/uploads, as a tus client sees them.

A real third-party client (tuspy) talks to the real server (``picup run``,
waitress) over HTTP; the protocol details are checked through Flask's test
client. Every upload carries real photo bytes made by Pillow.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import sqlite3
from contextlib import closing
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest
from tusclient import client as tus

from picup import db, uploads
from picup.models import Media, Upload, utcnow
from picup.web.auth import COOKIE

from . import media_files

BASE = "/api/v1/uploads"
TUS = {"Tus-Resumable": "1.0.0"}
OFFSET_TYPE = "application/offset+octet-stream"


# ---------------------------------------------------------------- helpers
def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def b64(data: bytes | str) -> str:
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode("ascii")


def upload_metadata(**fields: str) -> str:
    return ",".join(f"{key} {b64(value)}" for key, value in fields.items())


def create(api, length: int, filename="photo.jpg", body: bytes | None = None, **headers):
    """POST a new upload (with ``body``: creation-with-upload)."""
    headers = {**TUS, "Upload-Length": str(length), "Upload-Metadata": upload_metadata(filename=filename), **headers}
    if body is not None:
        headers["Content-Type"] = OFFSET_TYPE
    return api.post(BASE, data=body, headers=headers)


def start(api, content: bytes, filename="photo.jpg") -> str:
    """A new upload for ``content``; its URL path."""
    response = create(api, len(content), filename)
    assert response.status_code == 201, response.get_json()
    return response.headers["Location"]


def patch(api, url: str, offset: int, chunk: bytes, checksum: str | None = None, **headers):
    headers = {**TUS, "Upload-Offset": str(offset), "Content-Type": OFFSET_TYPE, **headers}
    if checksum:
        headers["Upload-Checksum"] = checksum
    return api.patch(url, data=chunk, headers=headers)


def head(api, url: str):
    return api.request("HEAD", url, headers=TUS)


def send_all(api, url: str, content: bytes, chunk_size=4096):
    """PATCH ``content`` in chunks; the answer to the last one."""
    response = None
    for offset in range(0, len(content), chunk_size):
        response = patch(api, url, offset, content[offset:offset + chunk_size])
        assert response.status_code == 204, response.get_json()
    return response


def part_file(settings, url: str) -> Path:
    return uploads.part_path(settings, url.rsplit("/", 1)[-1])


def count(model, *where) -> int:
    with db.connection():
        query = model.select()
        return (query.where(*where) if where else query).count()


def tus_client(server, http) -> tus.TusClient:
    """tuspy signed in with the browser session: its cookie and its CSRF token."""
    return tus.TusClient(
        server.url + BASE,
        headers={"Cookie": f"{COOKIE}={http.cookies[COOKIE]}", "X-CSRF-Token": http.headers["X-CSRF-Token"]},
    )


def original_sha256(server, http, media_id: int) -> str:
    response = http.get(f"{server.url}/api/v1/media/{media_id}/original")
    assert response.status_code == 200
    return sha256(response.content)


# ------------------------------------------------- a real tus client, real HTTP
def test_tuspy_uploads_a_photo_in_several_chunks_to_the_live_server(live_server, tmp_path):
    content = media_files.noisy_jpeg(3)
    path = tmp_path / "family.jpg"
    path.write_bytes(content)
    server = live_server()
    http = server.session()
    chunk_size = 8 * 1024
    assert len(content) > 3 * chunk_size

    uploader = tus_client(server, http).uploader(
        str(path), chunk_size=chunk_size, metadata={"filename": "가족사진.jpg"}, upload_checksum=True
    )
    acknowledged = []
    while uploader.offset < len(content):
        uploader.upload_chunk()  # one PATCH each, with a sha1 Upload-Checksum
        acknowledged.append(uploader.offset)

    assert acknowledged == [min(n * chunk_size, len(content)) for n in range(1, len(acknowledged) + 1)]
    assert len(acknowledged) >= 4
    media_id = int(uploader.request.response_headers["picup-media-id"])
    assert uploader.request.response_headers["picup-duplicate"] == "false"
    items = http.get(server.url + "/api/v1/media").json()["items"]
    assert [(m["id"], m["filename"], m["size"], m["sha256"]) for m in items] == [
        (media_id, "가족사진.jpg", len(content), sha256(content))
    ]
    assert original_sha256(server, http, media_id) == sha256(content)


def test_tuspy_upload_interrupted_by_a_server_restart_resumes_where_it_stopped(live_server, tmp_path):
    # A genuine multi-MiB JPEG (incompressible noise), not a small header with padding.
    content = media_files.noisy_jpeg(11, size=(3200, 2400))
    assert len(content) > 3 * 1024**2
    path = tmp_path / "big.jpg"
    path.write_bytes(content)
    data_dir = tmp_path / "live-data"
    chunk_size = 512 * 1024
    reached = 3 * chunk_size

    first = live_server(data_dir=data_dir)
    http = first.session()
    uploader = tus_client(first, http).uploader(str(path), chunk_size=chunk_size, metadata={"filename": "big.jpg"})
    uploader.upload(stop_at=reached)
    assert uploader.offset == reached
    upload_id = uploader.url.rsplit("/", 1)[-1]
    assert first.stop() == 0  # SIGTERM: a graceful stop

    second = live_server(data_dir=data_dir)  # same data folder, new port
    http = second.session()
    url = f"{second.url}{BASE}/{upload_id}"
    status = http.head(url, headers=TUS)
    assert status.status_code == 200
    assert status.headers["Upload-Offset"] == str(reached)
    assert status.headers["Upload-Length"] == str(len(content))

    resumed = tus_client(second, http).uploader(str(path), chunk_size=chunk_size, url=url)
    assert resumed.offset == reached  # tuspy asked the server (HEAD) where to go on
    resumed.upload()

    media_id = int(resumed.request.response_headers["picup-media-id"])
    items = http.get(second.url + "/api/v1/media").json()["items"]
    assert [(m["id"], m["sha256"], m["size"]) for m in items] == [(media_id, sha256(content), len(content))]
    assert original_sha256(second, http, media_id) == sha256(content)
    assert second.stop() == 0
    with closing(sqlite3.connect(data_dir / "picup.db")) as database:
        assert database.execute("SELECT count(*) FROM media").fetchone() == (1,)


# ------------------------------------------------------------ protocol rules
def test_options_announces_version_extensions_max_size_and_checksums(app, settings):
    response = app.test_client().options(BASE)  # discovery needs neither sign-in nor Tus-Resumable

    assert response.status_code in (200, 204)
    assert response.headers["Tus-Resumable"] == "1.0.0"
    assert "1.0.0" in response.headers["Tus-Version"].split(",")
    extensions = response.headers["Tus-Extension"].split(",")
    for extension in ("creation", "creation-with-upload", "termination", "checksum", "expiration"):
        assert extension in extensions
    assert response.headers["Tus-Max-Size"] == str(settings.max_upload_size)
    algorithms = response.headers["Tus-Checksum-Algorithm"].split(",")
    assert "sha1" in algorithms  # the one every tus client knows
    assert "sha256" in algorithms


def test_request_without_tus_resumable_is_refused_with_412(mom):
    content = media_files.jpeg()
    url = start(mom, content)

    no_version = [
        mom.post(BASE, headers={"Upload-Length": "10"}),
        mom.request("HEAD", url),
        mom.patch(url, data=content, headers={"Upload-Offset": "0", "Content-Type": OFFSET_TYPE}),
        mom.delete(url),
        mom.post(BASE, headers={"Tus-Resumable": "0.2.2", "Upload-Length": "10"}),
    ]

    for response in no_version:
        assert response.status_code == 412
        assert "1.0.0" in response.headers["Tus-Version"]
    assert head(mom, url).headers["Upload-Offset"] == "0"


def test_creation_without_upload_length_is_refused_with_411(mom):
    missing = mom.post(BASE, headers={**TUS, "Upload-Metadata": upload_metadata(filename="a.jpg")})
    deferred = mom.post(BASE, headers={**TUS, "Upload-Defer-Length": "1"})

    assert missing.status_code == 411
    assert deferred.status_code == 411  # creation-defer-length is not offered
    assert count(Upload) == 0


def test_creation_answers_location_offset_zero_and_expiry(mom, settings):
    content = media_files.jpeg()

    response = create(mom, len(content))

    assert response.status_code == 201
    assert response.headers["Location"].startswith(BASE + "/")
    assert response.headers["Upload-Offset"] == "0"
    expires = parsedate_to_datetime(response.headers["Upload-Expires"])
    in_hours = (expires - dt.datetime.now(dt.UTC)) / dt.timedelta(hours=1)
    assert settings.upload_expire_hours - 1 < in_hours <= settings.upload_expire_hours
    status = head(mom, response.headers["Location"])
    assert status.status_code == 200
    assert status.headers["Upload-Offset"] == "0"
    assert status.headers["Upload-Length"] == str(len(content))
    assert status.headers["Cache-Control"] == "no-store"
    assert part_file(settings, response.headers["Location"]).stat().st_size == 0


def test_patch_at_a_wrong_offset_is_refused_with_409_and_the_offset_is_unchanged(mom, settings):
    content = media_files.noisy_jpeg(1)
    url = start(mom, content)
    assert patch(mom, url, 0, content[:1000]).status_code == 204

    behind = patch(mom, url, 0, content[:1000])
    ahead = patch(mom, url, 2000, content[2000:3000])

    assert behind.status_code == 409
    assert ahead.status_code == 409
    assert head(mom, url).headers["Upload-Offset"] == "1000"
    assert part_file(settings, url).read_bytes() == content[:1000]


# "²" arrives as the latin-1 header byte 0xB2: str.isdigit() says yes, int() says no.
@pytest.mark.parametrize("value", ["-1", "12abc", "1e3", "\u00b2"],
                         ids=["negative", "letters", "exponent", "superscript-two"])
def test_upload_length_and_offset_that_are_not_plain_numbers_are_refused_with_400(mom, settings, value):
    content = media_files.jpeg()
    url = start(mom, content)

    bad_length = mom.post(BASE, headers={**TUS, "Upload-Length": value})
    bad_offset = mom.patch(url, data=content, headers={**TUS, "Upload-Offset": value, "Content-Type": OFFSET_TYPE})

    assert bad_length.status_code == 400
    assert bad_offset.status_code == 400
    assert count(Upload) == 1
    assert head(mom, url).headers["Upload-Offset"] == "0"


def test_patch_beyond_upload_length_is_refused_and_keeps_the_offset(mom, settings):
    content = media_files.noisy_jpeg(10)
    url = start(mom, content)
    assert patch(mom, url, 0, content[:1000]).status_code == 204

    response = patch(mom, url, 1000, content[1000:] + b"one byte too many")

    assert response.status_code == 400
    assert head(mom, url).headers["Upload-Offset"] == "1000"
    assert part_file(settings, url).read_bytes() == content[:1000]
    assert count(Media) == 0


def test_patch_without_the_offset_content_type_is_refused_with_415(mom):
    content = media_files.jpeg()
    url = start(mom, content)

    response = mom.patch(url, data=content, headers={**TUS, "Upload-Offset": "0",
                                                      "Content-Type": "application/octet-stream"})

    assert response.status_code == 415
    assert head(mom, url).headers["Upload-Offset"] == "0"


def test_patch_with_a_wrong_checksum_is_refused_with_460_then_the_right_one_is_accepted(mom, settings):
    content = media_files.noisy_jpeg(2)
    url = start(mom, content)
    first, rest = content[:2048], content[2048:]
    assert patch(mom, url, 0, first, checksum=f"sha1 {b64(hashlib.sha1(first).digest())}").status_code == 204

    wrong = patch(mom, url, 2048, rest, checksum=f"sha1 {b64(hashlib.sha1(b'something else').digest())}")

    assert wrong.status_code == 460
    assert head(mom, url).headers["Upload-Offset"] == "2048"
    assert part_file(settings, url).read_bytes() == first
    right = patch(mom, url, 2048, rest, checksum=f"sha256 {b64(hashlib.sha256(rest).digest())}")
    assert right.status_code == 204
    assert right.headers["Upload-Offset"] == str(len(content))
    media_id = int(right.headers["Picup-Media-Id"])
    assert sha256(mom.get(f"/api/v1/media/{media_id}/original").data) == sha256(content)


def test_patch_with_an_unknown_checksum_algorithm_is_refused_with_400(mom):
    content = media_files.jpeg()
    url = start(mom, content)

    response = patch(mom, url, 0, content, checksum=f"crc32 {b64(b'1234')}")

    assert response.status_code == 400
    assert head(mom, url).headers["Upload-Offset"] == "0"


def test_creation_with_upload_keeps_the_first_bytes_sent_with_the_post(mom, settings):
    content = media_files.noisy_jpeg(4)

    response = create(mom, len(content), body=content[:5000])

    assert response.status_code == 201
    assert response.headers["Upload-Offset"] == "5000"
    url = response.headers["Location"]
    assert head(mom, url).headers["Upload-Offset"] == "5000"
    assert part_file(settings, url).read_bytes() == content[:5000]
    done = patch(mom, url, 5000, content[5000:])
    assert done.status_code == 204
    assert sha256(mom.get(f"/api/v1/media/{done.headers['Picup-Media-Id']}/original").data) == sha256(content)


def test_creation_with_upload_of_a_whole_small_photo_completes_at_once(mom):
    content = media_files.jpeg("green")

    response = create(mom, len(content), filename="small.jpg", body=content)

    assert response.status_code == 201
    assert response.headers["Upload-Offset"] == str(len(content))
    assert response.headers["Picup-Duplicate"] == "false"
    media = mom.get(f"/api/v1/media/{response.headers['Picup-Media-Id']}").get_json()["media"]
    assert (media["filename"], media["sha256"], media["kind"]) == ("small.jpg", sha256(content), "photo")


def test_creation_with_upload_and_a_wrong_checksum_leaves_no_unreachable_upload(mom, settings):
    content = media_files.noisy_jpeg(12)
    wrong = f"sha1 {b64(hashlib.sha1(b'not these bytes').digest())}"

    response = create(mom, len(content), body=content[:4000], **{"Upload-Checksum": wrong})

    if response.status_code == 201:  # tus: the upload exists, none of the body was accepted
        assert response.headers["Upload-Offset"] == "0"
        assert head(mom, response.headers["Location"]).headers["Upload-Offset"] == "0"
    else:  # or nothing was created at all: then nothing may be left behind
        assert response.status_code == 460
        assert count(Upload) == 0
        assert list((settings.tmp_path / "uploads").iterdir()) == []


def test_delete_terminates_the_upload_and_frees_its_part_file(mom, settings):
    content = media_files.noisy_jpeg(5)
    url = start(mom, content)
    assert patch(mom, url, 0, content[:3000]).status_code == 204
    assert part_file(settings, url).exists()

    response = mom.delete(url, headers=TUS)

    assert response.status_code == 204
    assert head(mom, url).status_code in (404, 410)
    assert patch(mom, url, 3000, content[3000:]).status_code in (404, 410)
    assert not part_file(settings, url).exists()
    assert count(Upload) == 0
    assert mom.get("/api/v1/media").get_json()["items"] == []


def test_completed_upload_names_its_media_and_an_identical_upload_is_a_duplicate(mom, settings):
    content = media_files.noisy_jpeg(6)

    first = send_all(mom, start(mom, content, "first.jpg"), content)
    second_url = start(mom, content, "again.jpg")
    second = send_all(mom, second_url, content)

    assert first.headers["Upload-Offset"] == str(len(content))
    assert first.headers["Picup-Duplicate"] == "false"
    assert second.headers["Picup-Duplicate"] == "true"
    assert second.headers["Picup-Media-Id"] == first.headers["Picup-Media-Id"]
    items = mom.get("/api/v1/media").get_json()["items"]
    assert [(m["id"], m["filename"]) for m in items] == [(int(first.headers["Picup-Media-Id"]), "first.jpg")]
    assert not part_file(settings, second_url).exists()
    assert head(mom, second_url).headers["Upload-Offset"] == str(len(content))
    assert patch(mom, second_url, len(content), b"x").status_code == 409  # nothing more to send


def test_non_media_upload_is_refused_with_415_and_leaves_nothing_behind(mom, settings):
    content = b"Dear diary, today we went to the beach.\n" * 200
    url = start(mom, content, "diary.jpg")  # the name says photo; the bytes do not
    assert patch(mom, url, 0, content[:4000]).status_code == 204

    response = patch(mom, url, 4000, content[4000:])

    assert response.status_code == 415
    assert response.get_json()["error"]["code"] == "unsupported_type"
    assert not part_file(settings, url).exists()
    assert list((settings.tmp_path / "uploads").iterdir()) == []
    assert count(Upload) == 0
    assert count(Media) == 0
    assert head(mom, url).status_code in (404, 410)


def test_upload_longer_than_max_upload_size_is_refused_with_413(mom, settings):
    response = create(mom, settings.max_upload_size + 1, filename="huge.mp4")

    assert response.status_code == 413
    assert "Location" not in response.headers
    assert count(Upload) == 0
    assert create(mom, settings.max_upload_size, filename="just-fits.mp4").status_code == 201


def test_creation_without_signing_in_is_refused_with_401(app):
    response = app.test_client().post(BASE, headers={**TUS, "Upload-Length": "100"})

    assert response.status_code == 401
    assert count(Upload) == 0


def test_another_family_member_cannot_see_continue_or_cancel_an_upload(family, mom, settings):
    dad = family.member("dad")
    content = media_files.noisy_jpeg(8)
    url = start(mom, content)
    assert patch(mom, url, 0, content[:1000]).status_code == 204

    assert head(dad, url).status_code in (404, 410)
    assert patch(dad, url, 1000, content[1000:]).status_code in (404, 410)
    assert dad.delete(url, headers=TUS).status_code in (404, 410)
    assert dad.get(url).status_code in (404, 410)

    assert head(mom, url).headers["Upload-Offset"] == "1000"
    assert part_file(settings, url).read_bytes() == content[:1000]
    assert count(Media) == 0


def test_abandoned_upload_expires_and_its_part_file_is_removed(mom, settings):
    content = media_files.noisy_jpeg(9)
    abandoned = [start(mom, content, f"abandoned-{n}.jpg") for n in range(2)]
    for url in abandoned:
        assert patch(mom, url, 0, content[:2000]).status_code == 204
    fresh = start(mom, content, "fresh.jpg")
    abandoned_ids = [url.rsplit("/", 1)[-1] for url in abandoned]

    with db.connection():
        Upload.update(expires_at=utcnow() - dt.timedelta(minutes=1)).where(Upload.id.in_(abandoned_ids)).execute()
        removed = uploads.expire(settings)

    assert removed == 2
    assert count(Upload, Upload.id.in_(abandoned_ids)) == 0
    for url in abandoned:
        assert not part_file(settings, url).exists()
        assert head(mom, url).status_code in (404, 410)
        assert patch(mom, url, 2000, content[2000:]).status_code in (404, 410)
    assert part_file(settings, fresh).exists()  # uploads still in time are left alone
    assert head(mom, fresh).status_code == 200
