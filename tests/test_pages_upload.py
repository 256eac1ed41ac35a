"""Adding photos from the page: the progress bars, the summary, a network blip, a page
reloaded half-way (the upload continues where it stopped), drag-and-drop, and an album."""

import base64
import hashlib
import io
import os
import time

from PIL import Image
from playwright.sync_api import expect

from tests import media_files
from tests.test_pages_browser import sign_in, wait_rendered


def big_photo(path, size=(3000, 2400)):
    """A real JPEG of about 10 MiB (noise does not compress): two 8 MiB chunks."""
    image = Image.frombytes("RGB", size, os.urandom(size[0] * size[1] * 3))
    image.save(path, "JPEG", quality=98)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def throttle(page, bytes_per_second, offline=False):
    """Chromium's own network throttling (DevTools protocol), as a slow Wi-Fi would be."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.emulateNetworkConditions", {
        "offline": offline, "latency": 5,
        "downloadThroughput": -1, "uploadThroughput": bytes_per_second,
    })
    return cdp


def requests_to(page, method, fragment):
    seen = []
    page.on("request", lambda request: seen.append(request) if request.method == method and fragment in request.url
            else None)
    return seen


def test_reloading_the_page_mid_upload_continues_where_it_stopped(browser, live_server, tmp_path):
    server = live_server()
    http = server.session()
    photo = tmp_path / "wedding.jpg"
    digest = big_photo(photo)
    page = browser.new_page(viewport={"width": 820, "height": 1180})
    page.on("dialog", lambda dialog: dialog.accept())  # "leave the page?" while uploading: yes
    sign_in(page, server)
    throttle(page, 2 * 1024 * 1024)
    created = requests_to(page, "POST", "/api/v1/uploads")
    patches = requests_to(page, "PATCH", "/api/v1/uploads/")
    page.set_input_files("#add-files", str(photo))
    uploads = page.get_by_role("region", name="Adding photos")
    expect(uploads.locator("li", has_text="wedding.jpg")).to_contain_text("Sending…")
    # wait until the server holds the first chunk, then reload in the middle of the second
    page.wait_for_event("requestfinished", lambda r: r.method == "PATCH", timeout=30000)
    page.wait_for_timeout(500)
    page.reload()
    expect(page.get_by_role("region", name="Adding photos")).to_contain_text("1 file did not finish adding")
    upload_url = patches[0].url
    held = int(http.head(upload_url, headers={"Tus-Resumable": "1.0.0"}).headers["Upload-Offset"])
    assert held >= 8 * 1024 * 1024, "the first chunk was kept by the server"

    throttle(page, -1)
    before = len(patches)
    page.set_input_files("#add-files", str(photo))  # the same file again
    expect(uploads.get_by_role("status")).to_have_text("1 added")
    assert len(created) == 1, "no second upload was started"
    assert int(patches[before].headers["upload-offset"]) == held, "it continued from where the server was"
    media = wait_rendered(http, server, 1)[0]
    assert media["filename"] == "wedding.jpg"
    assert hashlib.sha256(http.get(server.url + media["urls"]["original"]).content).hexdigest() == digest
    expect(page.get_by_role("img", name="wedding.jpg")).to_be_visible()


def test_a_network_blip_is_waited_out_and_progress_shows_per_file_and_in_total(browser, live_server, tmp_path):
    server = live_server()
    http = server.session()
    photo = tmp_path / "birthday.jpg"
    digest = big_photo(photo)
    small = tmp_path / "cat.jpg"
    small.write_bytes(media_files.jpeg("orange", size=(320, 240)))
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    sign_in(page, server)
    cdp = throttle(page, 2 * 1024 * 1024)
    page.set_input_files("#add-files", [str(photo), str(small)])
    uploads = page.get_by_role("region", name="Adding photos")
    total = uploads.get_by_role("progressbar", name="All files together")
    expect(total).to_be_visible()
    page.wait_for_function("() => document.getElementById('uploads-total').value > 0")
    # the network drops for a few seconds in the middle of the big file
    cdp.send("Network.emulateNetworkConditions",
             {"offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})
    expect(uploads.locator("li", has_text="birthday.jpg")).to_contain_text("The connection dropped", timeout=20000)
    page.wait_for_timeout(1500)
    cdp.send("Network.emulateNetworkConditions",
             {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})
    expect(uploads.get_by_role("status")).to_have_text("2 added", timeout=60000)
    assert page.evaluate("document.getElementById('uploads-total').value") == \
        page.evaluate("document.getElementById('uploads-total').max") == photo.stat().st_size + small.stat().st_size
    assert page.evaluate("[...document.querySelectorAll('.upload-list progress')].map(p => p.value === p.max)") \
        == [True, True]
    items = wait_rendered(http, server, 2)
    originals = {m["filename"]: http.get(server.url + m["urls"]["original"]).content for m in items}
    assert hashlib.sha256(originals["birthday.jpg"]).hexdigest() == digest


def test_dropping_files_on_the_page_adds_them(browser, live_server):
    server = live_server()
    http = server.session()
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    sign_in(page, server)
    page.wait_for_function("() => window.Picup && window.Picup.addFiles")  # the page's scripts are running
    photo = base64.b64encode(media_files.jpeg("purple", size=(320, 240))).decode()
    page.evaluate("""(data) => {
        const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
        const transfer = new DataTransfer();
        transfer.items.add(new File([bytes], 'dropped.jpg', {type: 'image/jpeg'}));
        const fire = (type) => document.body.dispatchEvent(
            new DragEvent(type, {dataTransfer: transfer, bubbles: true, cancelable: true}));
        fire('dragenter');
        if (document.getElementById('dropzone').hidden) throw new Error('no drop zone shown');
        fire('dragover');
        fire('drop');
    }""", photo)
    expect(page.locator("#dropzone")).to_be_hidden()
    expect(page.get_by_role("region", name="Adding photos").get_by_role("status")).to_have_text("1 added")
    expect(page.get_by_role("img", name="dropped.jpg")).to_be_visible()
    assert [m["filename"] for m in wait_rendered(http, server, 1)] == ["dropped.jpg"]


def test_adding_on_an_album_page_puts_the_photos_in_that_album(browser, live_server, tmp_path):
    server = live_server()
    http = server.session()
    album = http.post(server.url + "/api/v1/albums", json={"title": "Chuseok"}).json()["album"]
    http.post(server.url + "/api/v1/media?filename=elsewhere.jpg", data=media_files.jpeg("gray"))
    photo = tmp_path / "songpyeon.jpg"
    buffer = io.BytesIO()
    Image.new("RGB", (400, 300), "green").save(buffer, "JPEG")
    photo.write_bytes(buffer.getvalue())
    page = browser.new_page(viewport={"width": 390, "height": 844})
    sign_in(page, server)
    page.goto(server.url + f"/albums/{album['id']}")
    expect(page.get_by_text("This album is empty.")).to_be_visible()
    page.set_input_files("#add-files", str(photo))
    expect(page.get_by_role("region", name="Adding photos").get_by_role("status")).to_have_text("1 added")
    expect(page.get_by_role("img", name="songpyeon.jpg")).to_be_visible()
    expect(page.get_by_role("img", name="elsewhere.jpg")).to_have_count(0)
    in_album = http.get(server.url + f"/api/v1/media?album={album['id']}").json()["items"]
    assert [m["filename"] for m in in_album] == ["songpyeon.jpg"]


def test_dropping_an_iphone_folder_leaves_out_what_only_goes_with_photos(browser, live_server):
    """A folder copied off an iPhone holds each Live Photo's still and video, the .AAE of each
    edit, and the computer's own files; only the photos and videos go up."""
    server = live_server()
    http = server.session()
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    sign_in(page, server)
    page.wait_for_function("() => window.Picup && window.Picup.addFiles")
    sent = requests_to(page, "POST", "/api/v1/uploads")
    still, motion = media_files.live_photo("1F6C0A4E-7D2B-4C43-9E55-0A9B3E8E1234")
    files = {"IMG_0001.HEIC": still, "IMG_0001.MOV": motion, "IMG_0001.AAE": b"<?xml version='1.0'?><plist/>",
             ".DS_Store": b"\0\0\0\1Bud1", "Thumbs.db": b"\xd0\xcf\x11\xe0"}
    drop = """(files) => {
        const transfer = new DataTransfer();
        for (const [name, data] of Object.entries(files)) {
            transfer.items.add(new File([Uint8Array.from(atob(data), (c) => c.charCodeAt(0))], name));
        }
        document.body.dispatchEvent(new DragEvent('drop', {dataTransfer: transfer, bubbles: true, cancelable: true}));
    }"""
    page.evaluate(drop, {name: base64.b64encode(data).decode() for name, data in files.items()})
    status = page.get_by_role("region", name="Adding photos").get_by_role("status")
    expect(status).to_have_text(
        "2 added · 3 files left out: they only go with photos (edits, details, camera previews)")
    assert len(sent) == 2, "nothing is sent for the files left out"
    # the still and its video show as one photo once the worker has read both
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        items = http.get(server.url + "/api/v1/media").json()["items"]
        if len(items) == 1 and items[0]["live"]:
            break
        time.sleep(0.2)
    assert [(m["filename"], bool(m["live"])) for m in items] == [("IMG_0001.HEIC", True)]

    page.evaluate(drop, {"IMG_0002.AAE": base64.b64encode(b"<plist/>").decode()})
    expect(status).to_have_text("1 file left out: it only goes with photos (edits, details, camera previews)")
    assert len(sent) == 2


def drag_from_the_desktop(page, *paths):
    """What Chromium does when files or folders are dragged in from the computer (the
    DevTools protocol's drag input, with real paths): real entries, folders included."""
    cdp = page.context.new_cdp_session(page)
    data = {"items": [], "files": [str(path) for path in paths], "dragOperationsMask": 1}
    for step in ("dragEnter", "dragOver", "drop"):
        cdp.send("Input.dispatchDragEvent", {"type": step, "x": 400, "y": 400, "data": data})


def test_dropping_a_whole_folder_adds_what_is_inside(browser, live_server, tmp_path):
    """A grandparent drags the holiday folder from the desktop, with its sub-folders, as
    `picup import` would take it: hidden and system folders and companion files left out."""
    holiday = tmp_path / "Holiday 2024"
    (holiday / "Day 2").mkdir(parents=True)
    (holiday / ".hidden").mkdir()
    (holiday / "@eaDir" / "IMG_0001.JPG").mkdir(parents=True)  # a Synology's thumbnails
    (holiday / "IMG_0001.JPG").write_bytes(media_files.jpeg("red"))
    (holiday / "IMG_0001.AAE").write_bytes(b"<plist/>")
    (holiday / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (holiday / "Day 2" / "IMG_0002.JPG").write_bytes(media_files.jpeg("blue"))
    (holiday / "Day 2" / "clip.mp4").write_bytes(media_files.video("mp4", frames=6))
    (holiday / ".hidden" / "secret.jpg").write_bytes(media_files.jpeg("black"))
    (holiday / "@eaDir" / "IMG_0001.JPG" / "SYNOPHOTO_THUMB_XL.jpg").write_bytes(media_files.jpeg("gray"))
    loose = tmp_path / "cake.jpg"
    loose.write_bytes(media_files.jpeg("pink"))

    server = live_server()
    http = server.session()
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    sign_in(page, server)
    page.wait_for_function("() => window.Picup && window.Picup.addFiles")
    drag_from_the_desktop(page, holiday, loose)
    status = page.get_by_role("region", name="Adding photos").get_by_role("status")
    expect(status).to_have_text(
        "4 added · 2 files left out: they only go with photos (edits, details, camera previews)", timeout=30000)
    assert sorted(m["filename"] for m in wait_rendered(http, server, 4)) == [
        "IMG_0001.JPG", "IMG_0002.JPG", "cake.jpg", "clip.mp4"]
