"""Fuzzing the way in: mutated photos and videos through the upload route, and made-up tus
requests. Whatever arrives, the web process answers (never a 500), a refusal comes with a
message and leaves no file and no row, an accepted file is kept byte for byte, and the
worker finishes it (shown, or "could not read") without crashing.

Hypothesis runs a fixed number of examples here; ``tests/fuzz_ingest_atheris.py`` runs the
same checks for as long as you like, by hand, with coverage-guided mutation.
"""

from __future__ import annotations

import io
import os

import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st
from PIL import Image

from picup import worker
from picup.models import Media, Upload
from tests import media_files

TUS = {"Tus-Resumable": "1.0.0"}


def png_bytes():
    out = io.BytesIO()
    Image.new("RGBA", (40, 30), (10, 200, 30, 128)).save(out, "PNG")
    return out.getvalue()


SEEDS = {
    "jpeg": media_files.jpeg("teal", size=(64, 48), taken="2024:05:01 10:00:00"),
    "png": png_bytes(),
    "mp4": media_files.video("mp4", frames=6),
}


@st.composite
def mutated(draw):
    """A real file, then a few of: flipped bytes, a cut, inserted junk, a swapped head."""
    kind = draw(st.sampled_from(sorted(SEEDS)))
    data = bytearray(SEEDS[kind])
    for _ in range(draw(st.integers(1, 4))):
        how = draw(st.sampled_from(["flip", "cut", "insert", "head"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if how == "flip":
            data[at] ^= draw(st.integers(1, 255))
        elif how == "cut":
            del data[at:]
        elif how == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=64))
        else:
            data[:16] = draw(st.binary(min_size=16, max_size=16))
    return kind, bytes(data)


def files_under(root):
    return {os.path.join(d, f) for d, _, names in os.walk(root) for f in names}


def check_one(mom, settings, data: bytes) -> int:
    """Upload ``data``; the checks every example must pass. Returns the HTTP status."""
    rows, before = Media.select().count(), files_under(settings.data_path)
    answer = mom.upload(data, "fuzz.jpg")
    assert answer.status_code < 500, answer.get_data(as_text=True)
    if answer.status_code >= 400:
        assert answer.json["error"]["message"]
        assert Media.select().count() == rows, "a refusal leaves no row"
        left = {p for p in files_under(settings.data_path) - before if not p.endswith(("-wal", "-shm"))}
        assert not left, f"a refusal leaves no file: {left}"
        return answer.status_code
    media = answer.json["media"]
    assert mom.get(media["urls"]["original"]).data == data, "kept byte for byte"
    worker.drain_tasks()
    status = mom.get(f"/api/v1/media/{media['id']}").json["media"]["render"]
    assert status["status"] in ("ready", "failed"), status
    if status["status"] == "failed":
        assert status["error"], "a failure says why"
    mom.delete(f"/api/v1/media/{media['id']}")
    return answer.status_code


@hsettings(max_examples=60, deadline=None, derandomize=True,
           suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(example=mutated())
def test_mutated_photos_and_videos_never_break_the_way_in(mom, settings, pipeline, example):
    _, data = example
    check_one(mom, settings, data)


@pytest.mark.parametrize("kind", sorted(SEEDS))
def test_the_unmutated_seeds_are_shown(mom, settings, pipeline, kind):
    """The examples start from files that work, so a failure is the mutation's doing."""
    assert check_one(mom, settings, SEEDS[kind]) == 201


HEADER_VALUES = st.one_of(st.text(max_size=40), st.integers(-5, 10**20).map(str),
                          st.sampled_from(["", "0", "1.0.0", "0.2.2", "application/offset+octet-stream"]))


@hsettings(max_examples=80, deadline=None, derandomize=True,
           suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(create=st.dictionaries(st.sampled_from(["Tus-Resumable", "Upload-Length", "Upload-Metadata",
                                               "Upload-Defer-Length", "Upload-Checksum"]), HEADER_VALUES),
       patch=st.dictionaries(st.sampled_from(["Tus-Resumable", "Upload-Offset", "Content-Type",
                                              "Upload-Checksum"]), HEADER_VALUES),
       body=st.binary(max_size=200))
def test_made_up_tus_requests_get_an_answer_and_leave_nothing_half_made(mom, settings, create, patch, body):
    headers = {k: v for k, v in create.items() if v.isprintable() and "\n" not in v}
    made = mom.post("/api/v1/uploads", headers=headers)
    assert made.status_code < 500, (headers, made.get_data(as_text=True))
    if made.status_code != 201:
        return
    url = made.headers["Location"]
    headers = {k: v for k, v in patch.items() if v.isprintable()}
    sent = mom.request("PATCH", url, data=body, headers=headers)
    assert sent.status_code < 500, (headers, sent.get_data(as_text=True))
    state = mom.request("HEAD", url, headers=TUS)
    assert state.status_code in (200, 204, 404, 410)
    upload = Upload.get_or_none(Upload.id == url.rsplit("/", 1)[1])
    if upload is not None and upload.media_id is None:
        part = settings.tmp_path / "uploads" / f"{upload.id}.part"
        if part.exists():
            assert part.stat().st_size == upload.offset, "the part file holds exactly what was acknowledged"
    mom.request("DELETE", url, headers=TUS)
