"""Hostile input: file names that try to reach the filesystem, files that pretend to be
photos, and metadata that carries HTML. Each is kept as text, refused in words, and
leaves nothing behind."""

from __future__ import annotations

import os
from urllib.parse import quote

import pytest

from picup.models import Media
from tests import media_files

NAMES = [
    "../../../../etc/passwd.jpg",
    "/etc/cron.d/evil.jpg",
    "C:\\Windows\\system32\\evil.jpg",
    "nul\x00byte.jpg",
    "bell\x07and\x1b[31mescape\r\nSet-Cookie: x=1.jpg",
    "x" * 1000 + ".jpg",
    "\u202egpj.exe",  # right-to-left override: shows as "exe.jpg"
    "아빠 생일 🎂 e\u0301\u0301\u0301.jpg",
    '"; filename="evil.html',
]


def files_under(root):
    return {os.path.join(d, f) for d, _, names in os.walk(root) for f in names}


@pytest.mark.parametrize("name", NAMES, ids=range(len(NAMES)))
def test_a_file_name_is_only_ever_display_text(mom, settings, name):
    before = files_under(settings.data_path)
    photo = media_files.jpeg("teal", size=(64, 48))
    answer = mom.upload(photo, quote(name, safe=""))
    assert answer.status_code == 201, answer.json
    shown = answer.json["media"]["filename"]
    assert "/" not in shown and "\\" not in shown and len(shown) <= 255
    assert all(ch.isprintable() for ch in shown), "no control characters, no NUL"
    added = files_under(settings.data_path) - before
    for path in added:
        assert "passwd" not in path and "evil" not in path and "cron" not in path, path
        assert os.path.realpath(path).startswith(str(settings.data_path)), path
    download = mom.get(f"/api/v1/media/{answer.json['media']['id']}/original?download=1")
    disposition = download.headers["Content-Disposition"]
    assert "\r" not in disposition and "\n" not in disposition
    assert disposition.startswith("attachment;") and disposition.count('"') in (0, 2)
    assert download.data == photo and download.mimetype == "image/jpeg"


@pytest.mark.parametrize("content,what", [
    (b"<!doctype html><script>alert(1)</script>", "html"),
    (b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>', "svg"),
    (b"%PDF-1.4\n%...", "pdf"),
    (b"MZ\x90\x00" + b"\x00" * 60, "a Windows program"),
])
def test_a_file_that_only_pretends_to_be_a_photo_is_refused_and_leaves_nothing(mom, settings, content, what):
    before = files_under(settings.data_path)
    rows = Media.select().count()
    answer = mom.upload(content, "holiday.jpg")
    assert answer.status_code in (400, 415, 422), (what, answer.status_code)
    assert answer.json["error"]["message"], "a message in words"
    assert Media.select().count() == rows, "no row"
    left = {p for p in files_under(settings.data_path) - before if not p.endswith(("-wal", "-shm", ".db"))}
    assert not left, f"{what}: left behind {left}"


def test_originals_are_never_served_as_a_page_or_a_script(mom):
    answer = mom.upload(media_files.jpeg("teal", size=(64, 48)), "photo.html")
    media = answer.json["media"]
    assert media["media_type"] == "image/jpeg", "the type comes from the bytes, not the name"
    original = mom.get(media["urls"]["original"])
    assert original.mimetype == "image/jpeg" and original.headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in original.headers["Content-Security-Policy"]


def test_html_in_a_cameras_metadata_comes_back_as_plain_text(mom, pipeline):
    from picup import worker
    from tests.test_photo_renditions import jpeg_with_exif

    script = '<img src=x onerror="alert(1)">'
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as folder:
        source = jpeg_with_exif(Path(folder), ifd0={0x010F: script, 0x0110: "<script>alert(2)</script>"})
        answer = mom.upload(Path(source).read_bytes(), "camera.jpg")
    worker.drain_tasks()
    media = mom.get(f"/api/v1/media/{answer.json['media']['id']}").json["media"]
    assert media["camera"] == {"make": script, "model": "<script>alert(2)</script>"}, "kept as the text it is"
    raw = mom.get(f"/api/v1/media/{media['id']}")
    assert raw.mimetype == "application/json" and raw.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize("content,what", [
    (b"\xff\xd8\xff\xe0" + b"\x00" * 40, "a JPEG header and nothing else"),
    (b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 30, "an MP4 header and nothing else"),
])
def test_a_broken_photo_is_kept_as_it_is_and_said_to_be_unreadable(mom, pipeline, content, what):
    """Nothing lost, ever: a damaged file from a phone is kept byte for byte (maybe another
    program can read it), and the pages say it cannot be shown; the worker carries on."""
    from picup import worker

    answer = mom.upload(content, "broken.jpg")
    assert answer.status_code == 201, what
    worker.drain_tasks()
    media = mom.get(f"/api/v1/media/{answer.json['media']['id']}").json["media"]
    assert media["render"]["status"] == "failed" and media["render"]["error"], what
    assert mom.get(media["urls"]["original"]).data == content
    good = mom.upload(media_files.jpeg("gold", size=(64, 48)), "fine.jpg").json["media"]["id"]
    worker.drain_tasks()
    assert mom.get(f"/api/v1/media/{good}").json["media"]["render"]["status"] == "ready", "the worker carries on"


# Found while checking the scanner's findings (docs/security.md, "Scanner run"): both were a 500.
@pytest.mark.parametrize("body", [b"[" * 100_000, b'{"title":' * 50_000])
def test_json_nested_past_the_parser_is_refused_plainly(mom, body):
    response = mom.post("/api/v1/albums", data=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json["error"] == {"code": "invalid_json", "message": "The request body must be a JSON object."}
    assert mom.get("/api/v1/albums").json["albums"] == []


@pytest.mark.parametrize("made_up", ['["2020-01-01T00:00:00", 1e400]', '["2020-01-01T00:00:00", 9223372036854775808]',
                                     '["2020-01-01T00:00:00+09:00", 1]', "[" * 5000])
def test_a_made_up_page_cursor_is_a_bad_cursor(mom, made_up):
    import base64

    mom.upload(media_files.jpeg(), "a.jpg")
    cursor = base64.urlsafe_b64encode(made_up.encode()).decode().rstrip("=")
    response = mom.get(f"/api/v1/media?cursor={cursor}")
    assert response.status_code == 400 and response.json["error"]["code"] == "bad_cursor"
    assert response.json["error"]["message"] == "That page link is not valid any more. Please start from the top."
