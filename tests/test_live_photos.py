"""iPhone Live Photos: the still and its few seconds of video show as one photo.

The files are made here the way an iPhone writes them (tests/media_files.py:
Apple's maker note in the still, the QuickTime content identifier in the HEVC
video); ExifTool reads the same identifier from both.
"""

import hashlib
import io
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import av
import pytest
from picup import config, create_app, db, integrity, migrations, renditions, storage, tasks, worker
from picup.models import Media, Task, utcnow
from playwright.sync_api import expect

from tests import media_files
from tests.conftest import render_everything, store_of
from tests.test_pages_browser import sign_in

ID = "1F6C0A4E-7D2B-4C43-9E55-0A9B3E8E1234"
PICUP = str(Path(sys.executable).parent / "picup")


def timeline(api, album=None):
    return api.get("/api/v1/media" + (f"?album={album}" if album else "")).json["items"]


@pytest.mark.parametrize("video_first", [False, True], ids=["still first", "video first"])
def test_the_still_stands_for_both_and_plays_its_video(app, mom, settings, video_first):
    still_bytes, motion_bytes = media_files.live_photo(ID)
    uploads = [(still_bytes, "IMG_0001.HEIC"), (motion_bytes, "IMG_0001.MOV")]
    for content, name in reversed(uploads) if video_first else uploads:
        assert mom.upload(content, name).status_code == 201
    render_everything(app, settings)

    items = timeline(mom)
    assert [m["filename"] for m in items] == ["IMG_0001.HEIC"], "one photo, not a photo and a video"
    still = items[0]
    motion = mom.get(f"/api/v1/media/{still['live']['video_id']}").json["media"]
    assert motion["filename"] == "IMG_0001.MOV" and motion["live_photo_id"] == still["id"]
    assert 2 < still["live"]["duration"] < 3
    played = mom.get(still["urls"]["live"])
    assert played.status_code == 200 and played.mimetype == "video/mp4"
    with av.open(io.BytesIO(played.data)) as copy:
        assert copy.streams.video[0].codec_context.name == "h264", "the phone's HEVC, made playable"
    # both originals are kept, byte for byte
    assert mom.get(still["urls"]["original"]).data == still_bytes
    assert mom.get(motion["urls"]["original"]).data == motion_bytes


def test_a_most_compatible_jpeg_still_pairs_too(app, mom, settings):
    still_bytes, motion_bytes = media_files.live_photo(ID, still_format="JPEG")
    mom.upload(still_bytes, "IMG_0002.JPG")
    mom.upload(motion_bytes, "IMG_0002.MOV")
    render_everything(app, settings)
    assert [(m["filename"], m["live"] is not None) for m in timeline(mom)] == [("IMG_0002.JPG", True)]


def test_an_edited_live_photo_and_its_original_each_keep_a_video(app, mom, settings):
    """An iPhone's edited Live Photo comes off the phone as IMG_E0006.HEIC and .MOV beside
    the original pair, all four with the same identifier."""
    originals, edited = media_files.live_photo(ID, color="red"), media_files.live_photo(ID, color="yellow")
    mom.upload(originals[0], "IMG_0006.HEIC")
    mom.upload(edited[0], "IMG_E0006.HEIC")
    render_everything(app, settings)  # the stills first: each video then looks for a still
    mom.upload(originals[1], "IMG_0006.MOV")
    mom.upload(edited[1], "IMG_E0006.MOV")
    render_everything(app, settings)
    items = timeline(mom)
    assert sorted(m["filename"] for m in items) == ["IMG_0006.HEIC", "IMG_E0006.HEIC"], "no clip of its own"
    assert all(m["live"] is not None for m in items)
    with db.connection():
        assert {(m.live_photo.original_filename, m.original_filename)
                for m in Media.select().where(Media.live_photo.is_null(False))} == {
            ("IMG_0006.HEIC", "IMG_0006.MOV"), ("IMG_E0006.HEIC", "IMG_E0006.MOV")}, "each with its own video"


def test_an_edited_live_photo_read_out_of_order_still_pairs_by_name(app, mom, settings):
    """A render retried later reads the edited video first: it still goes with the edited still."""
    originals, edited = media_files.live_photo(ID, color="red"), media_files.live_photo(ID, color="yellow")
    mom.upload(originals[0], "IMG_0007.HEIC")
    mom.upload(edited[0], "IMG_E0007.HEIC")
    render_everything(app, settings)
    mom.upload(edited[1], "IMG_E0007.MOV")  # the edited video first
    render_everything(app, settings)
    mom.upload(originals[1], "IMG_0007.MOV")
    render_everything(app, settings)
    with db.connection():
        assert {(m.live_photo.original_filename, m.original_filename)
                for m in Media.select().where(Media.live_photo.is_null(False))} == {
            ("IMG_0007.HEIC", "IMG_0007.MOV"), ("IMG_E0007.HEIC", "IMG_E0007.MOV")}


@pytest.mark.parametrize("style, codec", [("pixel", "libx265"), ("microvideo", "libx264"), ("samsung", "libx265"),
                                          ("samsung-heic", "libx265"), ("galaxy", "libx265"),
                                          ("elements", "libx264")])
def test_an_android_motion_photo_plays_the_video_inside_it(app, mom, settings, style, codec):
    """Pixels ("Top Shot") and Galaxy phones ("Motion photo") keep the few seconds of video inside
    the JPEG; ExifTool finds the same video in these files (EmbeddedVideo)."""
    content = media_files.motion_photo(style, codec=codec)
    item = mom.upload(content, "PXL_20240505_041200123.MP.jpg").json["media"]
    render_everything(app, settings)
    [shown] = timeline(mom)
    assert shown["id"] == item["id"] and shown["kind"] == "photo"
    assert shown["live"]["video_id"] is None and 2 < shown["live"]["duration"] < 3
    played = mom.get(shown["urls"]["live"])
    assert played.status_code == 200 and played.mimetype == "video/mp4"
    with av.open(io.BytesIO(played.data)) as clip:
        assert clip.streams.video[0].codec_context.name == "h264", "plays in every browser"
        assert (clip.streams.video[0].width, clip.streams.video[0].height) == (400, 300)
    assert mom.get(shown["urls"]["original"]).data == content, "the original is kept as it came"


def test_a_motion_photo_shows_at_once_and_its_video_follows_even_after_a_hiccup(app, mom, settings):
    """Cutting out (and, for HEVC, converting) the clip takes a Pi seconds: the photo must not wait
    for it, and a clip that could not be read for a moment (the share went away) comes later."""
    w = worker.Worker(settings, store_of(app), processes=1)
    w.register()
    try:
        item = mom.upload(media_files.motion_photo("pixel"), "PXL_20240505_041200125.MP.jpg").json["media"]
        with db.connection():
            assert tasks.run_next()  # the photo's renditions, nothing else
            assert [t.kind for t in Task.select().where(Task.status == "queued")] == [renditions.MOTION_KIND]
        shown = mom.get(f"/api/v1/media/{item['id']}").json["media"]
        assert shown["render"]["status"] == "ready" and shown["live"] is None
        assert mom.get(shown["urls"]["thumb"]).status_code == 200

        blob = settings.storage_root / storage.blob_key(item["sha256"])
        away = blob.with_name("away")
        blob.rename(away)  # the NFS share is gone for a moment
        with db.connection():
            assert tasks.run_next()
            [task] = Task.select().where(Task.kind == renditions.MOTION_KIND)
            assert task.status == "queued" and "BlobNotFound" in task.last_error, "tried again later"
            Task.update(run_after=Task.created_at).execute()
        assert mom.get(f"/api/v1/media/{item['id']}").json["media"]["render"]["status"] == "ready"
        away.rename(blob)
        unmounted = settings.storage_root.with_name("unmounted")
        settings.storage_root.rename(unmounted)  # for longer than its retries last: it waits
        with db.connection():
            assert tasks.run_next() and Task.get_by_id(task.id).status == "done"
            [later] = Task.select().where((Task.kind == renditions.MOTION_KIND) & (Task.status == "queued"))
            assert (later.run_after - utcnow()).total_seconds() > 3000, "tried again in an hour"
            Task.update(run_after=Task.created_at).execute()
        unmounted.rename(settings.storage_root)
        with db.connection():
            assert tasks.run_next() and Task.get_by_id(later.id).status == "done"
            assert not tasks.run_next()
    finally:
        w.pool.close()
    shown = mom.get(f"/api/v1/media/{item['id']}").json["media"]
    assert 2 < shown["live"]["duration"] < 3
    assert mom.get(shown["urls"]["live"]).mimetype == "video/mp4"


def test_a_motion_photo_whose_video_went_missing_is_made_again(app, mom, settings):
    """The nightly check re-queues the renditions; until the clip is made again the photo does
    not promise a video that is not there. A re-render with the clip in place leaves it be."""
    item = mom.upload(media_files.motion_photo("galaxy"), "20240505_041200.jpg").json["media"]
    render_everything(app, settings)
    clip = settings.storage_root / storage.derived_key(item["sha256"], renditions.WEB_VIDEO)
    with db.connection():
        renditions.enqueue(item["id"])
    render_everything(app, settings)
    with db.connection():
        assert Task.select().where(Task.kind == renditions.MOTION_KIND).count() == 1, "not made twice"
    clip.unlink()
    with db.connection():
        checked = integrity.run(settings, store_of(app), all=True)
    assert json.loads(checked.detail)["renditions_queued"] == 1
    w = worker.Worker(settings, store_of(app), processes=1)
    w.register()
    try:
        with db.connection():
            renditions.enqueue(item["id"])  # twice, say: the check and an upgrade's sweep
            assert tasks.run_next() and tasks.run_next()  # the photo's renditions
            assert Task.select().where((Task.kind == renditions.MOTION_KIND) & (Task.status == "queued")).count() == 1
        assert mom.get(f"/api/v1/media/{item['id']}").json["media"]["live"] is None
    finally:
        w.pool.close()
    render_everything(app, settings)
    shown = mom.get(f"/api/v1/media/{item['id']}").json["media"]
    assert shown["live"]["duration"] > 2 and mom.get(shown["urls"]["live"]).status_code == 200


def test_a_motion_photo_whose_video_was_cut_off_is_a_photo(app, mom, settings):
    """A photo edited on a computer often keeps the XMP that announces a video, but not the video."""
    item = mom.upload(media_files.motion_photo("edited"), "PXL_20240505_041200124.MP.jpg").json["media"]
    render_everything(app, settings)
    [shown] = timeline(mom)
    assert shown["live"] is None and "live" not in shown["urls"]
    assert mom.get(f"/api/v1/media/{item['id']}/video").status_code == 404


def test_what_is_not_a_live_photo_stays_a_video_of_its_own(app, family, settings):
    mom, dad = family.admin, family.member("dad")
    still, _ = media_files.live_photo(ID, color="red")
    _, long_video = media_files.live_photo(ID, seconds=12)  # same identifier, but a film of its own
    _, dads_video = media_files.live_photo(ID, color="blue")  # someone else's library
    _, other_motion = media_files.live_photo("0A1B2C3D-0000-4000-8000-00000000ABCD", color="green")
    mom.upload(still, "IMG_0003.HEIC")
    mom.upload(long_video, "IMG_0004.MOV")
    mom.upload(other_motion, "IMG_0005.MOV")  # its still never arrives
    dad.upload(dads_video, "IMG_0003.MOV")
    render_everything(app, settings)
    assert sorted(m["filename"] for m in timeline(mom)) == ["IMG_0003.HEIC", "IMG_0004.MOV", "IMG_0005.MOV"]
    assert all(m["live"] is None and m["live_photo_id"] is None for m in timeline(mom))
    assert [m["filename"] for m in timeline(dad)] == ["IMG_0003.MOV"]


def test_trash_restore_and_delete_for_good_take_both(app, mom, settings):
    still_bytes, motion_bytes = media_files.live_photo(ID)
    still_id = mom.upload(still_bytes, "IMG_0006.HEIC").json["media"]["id"]
    motion_id = mom.upload(motion_bytes, "IMG_0006.MOV").json["media"]["id"]
    render_everything(app, settings)

    assert mom.delete(f"/api/v1/media/{still_id}").status_code == 200
    assert timeline(mom) == []
    trash = mom.get("/api/v1/trash").json["items"]
    assert [(m["id"], m["live"]["video_id"]) for m in trash] == [(still_id, motion_id)], "one item in the trash"
    assert mom.get(f"/api/v1/media/{motion_id}").status_code == 404

    assert mom.post(f"/api/v1/media/{still_id}/restore").status_code == 200
    assert [(m["id"], m["live"]["video_id"]) for m in timeline(mom)] == [(still_id, motion_id)]

    # the same still sent again while in the trash brings the pair back too
    mom.delete(f"/api/v1/media/{still_id}")
    again = mom.upload(still_bytes, "IMG_0006.HEIC")
    assert again.json["restored_from_trash"] is True
    assert timeline(mom)[0]["live"]["video_id"] == motion_id

    mom.delete(f"/api/v1/media/{still_id}")
    assert mom.delete(f"/api/v1/trash/{still_id}").status_code == 204
    assert mom.get("/api/v1/trash").json["items"] == []
    for content in (still_bytes, motion_bytes):
        assert not store_of(app).exists(storage.blob_key(hashlib.sha256(content).hexdigest()))
    with db.connection():
        assert Media.select().count() == 0


def test_the_api_asking_for_the_video_half_acts_on_the_pair(app, mom, settings):
    """A script sees the video's id in ``live.video_id``; trash, restore and delete by that id
    act on the Live Photo as one, so the two never part in the trash."""
    still_bytes, motion_bytes = media_files.live_photo(ID)
    still_id = mom.upload(still_bytes, "IMG_0008.HEIC").json["media"]["id"]
    motion_id = mom.upload(motion_bytes, "IMG_0008.MOV").json["media"]["id"]
    render_everything(app, settings)

    assert mom.delete(f"/api/v1/media/{motion_id}").status_code == 200
    assert timeline(mom) == []
    assert [(m["id"], m["live"]["video_id"]) for m in mom.get("/api/v1/trash").json["items"]] == [
        (still_id, motion_id)]
    assert mom.post(f"/api/v1/media/{motion_id}/restore").status_code == 200
    assert [(m["id"], m["live"]["video_id"]) for m in timeline(mom)] == [(still_id, motion_id)]

    mom.delete(f"/api/v1/media/{motion_id}")
    assert mom.delete(f"/api/v1/trash/{motion_id}").status_code == 204
    assert mom.get("/api/v1/trash").json["items"] == []
    with db.connection():
        assert Media.select().count() == 0


def test_an_album_shows_the_still_and_shares_its_video(app, family, settings):
    mom, dad, aunt = family.admin, family.member("dad"), family.member("aunt")
    album = mom.post("/api/v1/albums", json={"title": "Jeju"}).json["album"]
    still_bytes, motion_bytes = media_files.live_photo(ID)
    # chosen together on the album's page: the video goes in first here, and becomes the cover
    mom.upload(motion_bytes, "IMG_0007.MOV", album=album["id"])
    mom.upload(still_bytes, "IMG_0007.HEIC", album=album["id"])
    render_everything(app, settings)
    mom.put(f"/api/v1/albums/{album['id']}/members", json={"members": [{"user_id": dad.user["id"],
                                                                          "role": "view"}]})
    shown = timeline(dad, album["id"])
    assert [m["filename"] for m in shown] == ["IMG_0007.HEIC"]
    listed = dad.get(f"/api/v1/albums/{album['id']}").json["album"]
    assert listed["media_count"] == 1 and listed["cover_id"] == shown[0]["id"], "the still is the cover"
    assert dad.get(shown[0]["urls"]["live"]).status_code == 200
    assert aunt.get(shown[0]["urls"]["live"]).status_code == 404, "not shared with her"
    # taken out of the album, the video goes with the still
    mom.delete(f"/api/v1/albums/{album['id']}/media", json={"media_ids": [shown[0]["id"]]})
    assert dad.get(shown[0]["urls"]["live"]).status_code == 404


def test_a_slideshow_shows_the_still_once(app, mom, settings):
    still_bytes, motion_bytes = media_files.live_photo(ID)
    mom.upload(still_bytes, "IMG_0008.HEIC")
    mom.upload(motion_bytes, "IMG_0008.MOV")
    render_everything(app, settings)
    show = mom.post("/api/v1/slideshows", json={"source": "all"}).json["slideshow"]
    feed = mom.client.application.test_client().get(f"/tv/{show['token']}/feed").json["items"]
    assert len(feed) == 1 and feed[0]["kind"] == "photo"


def test_picup_import_of_an_iphone_folder(tmp_path):
    dcim = tmp_path / "DCIM" / "100APPLE"
    dcim.mkdir(parents=True)
    for number, colour in ((1, "red"), (2, "green")):
        still, motion = media_files.live_photo(f"0A1B2C3D-0000-4000-8000-00000000000{number}", color=colour)
        (dcim / f"IMG_000{number}.HEIC").write_bytes(still)
        (dcim / f"IMG_000{number}.MOV").write_bytes(motion)
        (dcim / f"IMG_000{number}.AAE").write_text("<plist/>")
    data = tmp_path / "data"
    env = {"PATH": "/usr/bin:/bin"}
    run = [PICUP, "user", "add", "mom", "--password-stdin", "--data", str(data)]
    assert subprocess.run(run, input="long enough\n", env=env, capture_output=True, text=True).returncode == 0
    imported = subprocess.run([PICUP, "import", str(tmp_path / "DCIM"), "--user", "mom", "--data", str(data)],
                              env=env, capture_output=True, text=True, timeout=120)
    assert "Added 4, already there 0, could not be added 0." in imported.stdout, imported.stdout + imported.stderr

    settings = config.load({"data_dir": str(data)}, environ={})
    migrations.migrate(settings.database_path)
    app = create_app(settings)
    render_everything(app, settings)
    with db.connection():
        stills = Media.select().where(Media.live_photo.is_null() & (Media.kind == "photo"))
        assert sorted((m.original_filename, m.motions.get().original_filename) for m in stills) == [
            ("IMG_0001.HEIC", "IMG_0001.MOV"), ("IMG_0002.HEIC", "IMG_0002.MOV")]
        assert Media.select().where(Media.live_photo.is_null()).count() == 2, "two photos on the photos page"


def test_the_viewer_plays_the_moving_photo(browser, live_server):
    server = live_server()
    http = server.session()
    still, motion = media_files.live_photo(ID, size=(640, 480))
    http.post(server.url + "/api/v1/media?filename=IMG_0009.HEIC", data=still)
    http.post(server.url + "/api/v1/media?filename=IMG_0009.MOV", data=motion)
    http.post(server.url + "/api/v1/media?filename=cake.jpg", data=media_files.jpeg("pink", size=(640, 480)))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # the worker reads both halves, then ties them together
        items = http.get(server.url + "/api/v1/media").json()["items"]
        if len(items) == 2 and all(m["render"]["status"] == "ready" for m in items) and any(m["live"] for m in items):
            break
        time.sleep(0.2)
    else:
        raise AssertionError("the worker did not pair the Live Photo in time")
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    sign_in(page, server)
    tile = page.get_by_role("button", name="Open IMG_0009.HEIC")
    expect(tile.locator(".badge")).to_have_text("Live")
    expect(page.get_by_role("button", name="Open cake.jpg").locator(".badge")).to_have_count(0)
    tile.click()
    viewer = page.get_by_role("dialog", name="Photo viewer")
    play = viewer.get_by_role("button", name="Play the moving photo")
    expect(play).to_be_visible()
    # a video that cannot be played (here: put in the trash from another device) says so
    video_id = next(m["live"]["video_id"] for m in items if m["live"])
    assert http.delete(f"{server.url}/api/v1/media/{video_id}").status_code == 200
    play.click()
    expect(page.locator("#notice")).to_contain_text("cannot be played right now")
    expect(viewer.get_by_role("img", name="IMG_0009.HEIC")).to_be_visible()
    expect(play).to_have_attribute("aria-pressed", "false")
    assert http.post(f"{server.url}/api/v1/media/{video_id}/restore").status_code == 200

    play.click()
    expect(viewer.locator("video.live")).to_be_visible()
    page.wait_for_function("() => { const v = document.querySelector('#viewer video.live');"
                           " return !v || v.currentTime > 0.5; }")
    # when it ends, the still is back
    expect(viewer.get_by_role("img", name="IMG_0009.HEIC")).to_be_visible(timeout=10_000)
    expect(viewer.locator("video")).to_have_count(0)
    expect(play).to_have_attribute("aria-pressed", "false")
    # the same button stops it early
    play.click()
    expect(viewer.locator("video.live")).to_be_visible()
    expect(play).to_have_attribute("aria-pressed", "true")
    play.click()
    expect(viewer.locator("video")).to_have_count(0)
    expect(viewer.get_by_role("img", name="IMG_0009.HEIC")).to_be_visible()
    page.keyboard.press("ArrowLeft")  # the cake came later: it is first on the page
    expect(viewer.get_by_role("img", name="cake.jpg")).to_be_visible()
    expect(play).to_be_hidden()


def test_a_google_takeout_keeps_live_and_motion_photos_together(tmp_path):
    """Takeout writes a Live Photo as the photo with its JSON file and a video of the same
    name without one, and the video no longer carries the phone's identifier."""
    import json

    export = tmp_path / "Takeout" / "Google Photos" / "Photos from 2024"
    export.mkdir(parents=True)

    def put(name, content, sidecar=True):
        (export / name).write_bytes(content)
        if sidecar:
            (export / f"{name}.supplemental-metadata.json").write_text(json.dumps(
                {"title": name, "photoTakenTime": {"timestamp": "1714881600"}}))

    short, long = media_files.video("mp4", frames=30), media_files.video("mp4", frames=150)  # 2.5 s, 12.5 s
    iphone_still, _ = media_files.live_photo(ID)  # keeps the phone's identifier; Takeout's MP4 has lost it
    put("IMG_5580.HEIC", iphone_still)
    put("IMG_5580.MP4", short, sidecar=False)
    put("PXL_20240505_041200123.MP.jpg", media_files.jpeg("green"))  # a Pixel's motion photo
    put("PXL_20240505_041200123.MP", media_files.video("mp4", frames=31), sidecar=False)
    put("VID_0001.jpg", media_files.jpeg("blue"))  # a photo and a video that only share a name
    put("VID_0001.mp4", media_files.video("mp4", frames=32))
    put("IMG_0007.jpg", media_files.jpeg("red"))
    put("IMG_0007.MP4", long, sidecar=False)  # too long for a Live Photo: a video of its own
    # two iPhones' IMG_1234 in one year: Takeout names the second IMG_1234(1), its JSON keeps the title
    put("IMG_1234.HEIC", media_files.live_photo("0A1B2C3D-0000-4000-8000-000000001234", color="navy")[0])
    put("IMG_1234.MP4", media_files.video("mp4", frames=33), sidecar=False)
    (export / "IMG_1234(1).HEIC").write_bytes(media_files.image("HEIF", "olive", size=(300, 200)))
    (export / "IMG_1234.HEIC.supplemental-metadata(1).json").write_text(json.dumps(
        {"title": "IMG_1234.HEIC", "photoTakenTime": {"timestamp": "1683000000"}}))
    put("IMG_1234(1).MP4", media_files.video("mp4", frames=34), sidecar=False)

    data = tmp_path / "data"
    env = {"PATH": "/usr/bin:/bin"}
    run = [PICUP, "user", "add", "mom", "--password-stdin", "--data", str(data)]
    assert subprocess.run(run, input="long enough\n", env=env, capture_output=True, text=True).returncode == 0
    settings = config.load({"data_dir": str(data)}, environ={})
    # the still was already in the library (sent from the phone), shown and all
    earlier = tmp_path / "from the phone"
    earlier.mkdir()
    (earlier / "IMG_5580.HEIC").write_bytes(iphone_still)
    subprocess.run([PICUP, "import", str(earlier), "--user", "mom", "--data", str(data)], env=env, check=True,
                   capture_output=True)
    app = create_app(settings)
    render_everything(app, settings)
    with db.connection():  # and then put in the trash: the Takeout brings it back, with its video
        earlier_still = Media.get(Media.original_filename == "IMG_5580.HEIC")
        assert earlier_still.live_id == ID
        Media.update(trashed_at=earlier_still.created_at).where(Media.id == earlier_still.id).execute()

    imported = subprocess.run([PICUP, "import", str(tmp_path / "Takeout"), "--user", "mom", "--data", str(data)],
                              env=env, capture_output=True, text=True, timeout=120)
    assert "Added 11, already there 1, could not be added 0." in imported.stdout, imported.stdout + imported.stderr
    render_everything(app, settings)
    with db.connection():
        pairs = {(m.live_photo.original_filename, m.original_filename)
                 for m in Media.select().where(Media.live_photo.is_null(False))}
        assert pairs == {("IMG_5580.HEIC", "IMG_5580.MP4"),
                         ("PXL_20240505_041200123.MP.jpg", "PXL_20240505_041200123.MP"),
                         ("IMG_1234.HEIC", "IMG_1234.MP4"), ("IMG_1234(1).HEIC", "IMG_1234(1).MP4")}
        shown = sorted(m.original_filename for m in Media.select().where(Media.live_photo.is_null()))
        assert shown == ["IMG_0007.MP4", "IMG_0007.jpg", "IMG_1234(1).HEIC", "IMG_1234.HEIC", "IMG_5580.HEIC",
                         "PXL_20240505_041200123.MP.jpg", "VID_0001.jpg", "VID_0001.mp4"]
        assert Media.select().where(Media.trashed_at.is_null(False)).count() == 0

    # The same export unpacked elsewhere and imported again: nothing new, the pairs stand.
    elsewhere = tmp_path / "usb stick"
    shutil.copytree(tmp_path / "Takeout", elsewhere / "Takeout")
    again = subprocess.run([PICUP, "import", str(elsewhere), "--user", "mom", "--data", str(data)],
                           env=env, capture_output=True, text=True, timeout=120)
    assert "Added 0, already there 12, could not be added 0." in again.stdout, again.stdout + again.stderr
    render_everything(app, settings)
    with db.connection():
        assert {(m.live_photo.original_filename, m.original_filename)
                for m in Media.select().where(Media.live_photo.is_null(False))} == pairs
