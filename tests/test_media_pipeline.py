"""The worker turns uploads into what browsers show, and never falls over on a bad file."""

import io
import json
import subprocess
import sys
from pathlib import Path

import av
import pytest
from PIL import Image

from picup import db, renditions, tasks, worker
from picup.models import Media, Task
from tests import media_files

PICUP = str(Path(sys.executable).parent / "picup")


@pytest.fixture
def pipeline(app, settings):
    """The worker's handlers and process pool, drained by hand (no scheduler)."""
    w = worker.Worker(settings, app.extensions["picup"].store, processes=2)
    w.register()
    yield w
    w.pool.close()


def drain():
    ran = worker.drain_tasks()
    assert ran > 0
    return ran


def test_a_photo_gets_a_thumbnail_a_display_size_and_a_placeholder(mom, pipeline):
    content = media_files.jpeg("red", size=(3000, 2000), taken="2019:07:14 15:30:00", offset="+09:00")
    media = mom.upload(content, "jeju.jpg").json["media"]
    assert media["render"]["status"] == "pending"
    assert mom.get(media["urls"]["thumb"]).json["error"]["code"] == "not_ready"
    drain()
    media = mom.get(f"/api/v1/media/{media['id']}").json["media"]
    assert media["render"] == {"status": "ready", "error": None, "damaged": False}
    assert media["placeholder"] and len(media["placeholder"]) < 200
    assert (media["taken_at"], media["taken_at_offset"]) == ("2019-07-14T06:30:00Z", 540)
    thumb = mom.get(media["urls"]["thumb"])
    assert thumb.status_code == 200 and thumb.headers["Content-Type"] == "image/webp"
    with Image.open(io.BytesIO(thumb.data)) as image:
        assert max(image.size) == 400 and image.format == "WEBP"
        assert image.convert("RGB").getpixel((10, 10))[0] > 200
    preview = mom.get(media["urls"]["preview"])
    with Image.open(io.BytesIO(preview.data)) as image:
        assert image.format == "JPEG" and image.size == (2048, 1365)
    ranged = mom.get(media["urls"]["preview"], headers={"Range": "bytes=0-1"})
    assert ranged.status_code == 206 and ranged.data == b"\xff\xd8"


def test_a_sideways_phone_photo_comes_out_upright(mom, pipeline):
    # Stored as the sensor saw it; EXIF orientation 6 says the stored left column is the visual top.
    sideways = Image.new("RGB", (400, 300), "white")
    sideways.paste((255, 0, 0), (0, 0, 20, 300))
    out = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6
    sideways.save(out, "JPEG", exif=exif.tobytes())
    media = mom.upload(out.getvalue(), "phone.jpg").json["media"]
    drain()
    media = mom.get(f"/api/v1/media/{media['id']}").json["media"]
    assert (media["width"], media["height"]) == (300, 400)
    with Image.open(io.BytesIO(mom.get(media["urls"]["preview"]).data)) as image:
        assert image.size == (300, 400)
        top = image.convert("RGB").getpixel((150, 5))
        assert top[0] > 200 and top[1] < 80, f"the red band should be on top, got {top}"


def test_a_video_that_browsers_cannot_play_gets_a_web_copy(mom, pipeline):
    content = media_files.video("avi", codec="mpeg4", frames=24)
    media = mom.upload(content, "old camera.avi").json["media"]
    drain()
    media = mom.get(f"/api/v1/media/{media['id']}").json["media"]
    assert media["render"]["status"] == "ready"
    assert media["duration"] == pytest.approx(2.0, abs=0.2)
    web = mom.get(media["urls"]["video"])
    assert web.status_code == 200 and web.headers["Content-Type"] == "video/mp4"
    with av.open(io.BytesIO(web.data)) as copy:
        assert copy.streams.video[0].codec_context.name == "h264"
    seek = mom.get(media["urls"]["video"], headers={"Range": "bytes=100-199"})
    assert seek.status_code == 206 and seek.data == web.data[100:200]
    assert mom.get(media["urls"]["thumb"]).headers["Content-Type"] == "image/webp"


def test_a_video_browsers_can_play_is_served_as_it_is(mom, pipeline):
    content = media_files.video("mp4")
    media = mom.upload(content, "clip.mp4").json["media"]
    drain()
    assert mom.get(media["urls"]["video"]).data == content


@pytest.mark.parametrize("name, content", [
    ("broken.jpg", media_files.jpeg()[:20] + b"\0" * 50),
    ("broken.mp4", media_files.video("mp4")[:40] + b"\x13" * 3000),
])
def test_a_file_no_decoder_can_read_shows_a_clear_state_and_the_worker_carries_on(mom, pipeline, name, content):
    bad = mom.upload(content, name).json["media"]
    good = mom.upload(media_files.jpeg("blue"), "good.jpg").json["media"]
    drain()
    bad = mom.get(f"/api/v1/media/{bad['id']}").json["media"]
    assert bad["render"]["status"] == "failed"
    response = mom.get(bad["urls"]["thumb"])
    assert response.status_code == 404 and response.json["error"]["code"] == "unreadable_file"
    assert "original is kept" in response.json["error"]["message"]
    assert mom.get(bad["urls"]["original"]).data == content, "the original is still there to download"
    assert mom.get(f"/api/v1/media/{good['id']}").json["media"]["render"]["status"] == "ready"
    failed = Task.get(Task.status == "failed")
    assert failed.attempts == 1 and json.loads(failed.payload) == {"media_id": bad["id"]}


def test_picup_tasks_lists_failures_and_retries_them(mom, pipeline, settings):
    mom.upload(b"\xff\xd8\xff" + b"\0" * 100, "broken.jpg")
    drain()
    listing = subprocess.run([PICUP, "tasks", "--data", str(settings.data_path)], capture_output=True, text=True)
    assert "media.render" in listing.stdout and "unreadable" in listing.stdout
    retry = subprocess.run([PICUP, "tasks", "--retry-all", "--data", str(settings.data_path)],
                           capture_output=True, text=True)
    assert "Queued 1 failed task again." in retry.stdout
    with db.connection():
        assert Task.get().status == "queued"


def test_the_sweep_queues_items_left_waiting(mom, pipeline):
    media = mom.upload(media_files.jpeg("green"), "g.jpg").json["media"]
    Task.delete().execute()  # as after an upgrade: rows waiting, no tasks
    assert renditions.sweep() == 1
    assert renditions.sweep() == 0, "already queued"
    drain()
    with db.connection():
        assert Media.get_by_id(media["id"]).render_status == "ready"


def test_deleting_for_good_removes_the_renditions_too(mom, pipeline, settings):
    media = mom.upload(media_files.jpeg("pink"), "p.jpg").json["media"]
    drain()
    derived = settings.storage_root / "derived"
    assert len([p for p in derived.rglob("*") if p.is_file()]) == 2
    mom.delete(f"/api/v1/media/{media['id']}")
    mom.delete(f"/api/v1/trash/{media['id']}")
    assert [p for p in derived.rglob("*") if p.is_file()] == []


def test_a_task_that_keeps_failing_ends_as_could_not_read(mom, pipeline):
    media = mom.upload(media_files.jpeg("gray"), "g.jpg").json["media"]
    task = Task.get()
    renditions.gave_up(json.loads(task.payload), "TimeoutError: too slow")
    assert mom.get(f"/api/v1/media/{media['id']}").json["media"]["render"]["status"] == "failed"
    assert tasks.failed() == []


def test_a_live_photo_pair_is_two_items_and_nothing_breaks(mom, pipeline):
    still = mom.upload(media_files.image("HEIF", "orange", size=(400, 300)), "IMG_0001.HEIC").json["media"]
    motion = mom.upload(media_files.video("mov", codec="libx265", frames=12), "IMG_0001.MOV").json["media"]
    drain()
    still = mom.get(f"/api/v1/media/{still['id']}").json["media"]
    motion = mom.get(f"/api/v1/media/{motion['id']}").json["media"]
    assert (still["kind"], still["render"]["status"]) == ("photo", "ready")
    assert (motion["kind"], motion["render"]["status"]) == ("video", "ready")
    with av.open(io.BytesIO(mom.get(motion["urls"]["video"]).data)) as copy:
        assert copy.streams.video[0].codec_context.name == "h264", "iPhone HEVC gets a web copy"
