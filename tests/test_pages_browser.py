"""The first visit in a real browser (Debian's Chromium driven by Playwright)."""

import datetime as dt

from playwright.sync_api import expect

from tests import media_files


def test_first_visit_setup_add_photos_sign_out_and_in(browser, live_server, tmp_path):
    server = live_server()
    page = browser.new_page(locale="en-US")
    page.goto(server.url + "/")
    expect(page.get_by_role("heading", name="Welcome to Picup")).to_be_visible()
    page.get_by_label("Your name").fill("Mom")
    page.get_by_label("Sign-in name").fill("mom")
    page.get_by_label("Password").fill("short")
    page.get_by_role("button", name="Create account").click()
    # the browser's own check stops a too-short password before it is sent
    expect(page.get_by_role("heading", name="Welcome to Picup")).to_be_visible()
    page.get_by_label("Password").fill("correct horse")
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("heading", name="Your photos")).to_be_visible()
    expect(page.get_by_text("No photos yet.")).to_be_visible()

    photo = tmp_path / "Jeju beach.jpg"
    photo.write_bytes(media_files.jpeg("skyblue", size=(320, 240)))
    old_photo = tmp_path / "summer 2019.jpg"
    old_photo.write_bytes(media_files.jpeg("gold", size=(320, 240), taken="2019:07:14 15:30:00", offset="+09:00"))
    not_a_photo = tmp_path / "letter.jpg"
    not_a_photo.write_text("Dear grandma")
    page.set_input_files("#add-files", [str(photo), str(old_photo), str(not_a_photo)])
    uploads = page.get_by_role("region", name="Adding photos")
    expect(uploads.get_by_role("status")).to_have_text(
        "2 added · 1 could not be added (see the reason next to it)")
    expect(uploads.locator("li", has_text="Jeju beach.jpg")).to_contain_text("Added")
    expect(uploads.locator("li", has_text="letter.jpg")).to_contain_text(
        'Not added: "letter.jpg" is not a photo or video')
    expect(page.get_by_role("img", name="Jeju beach.jpg")).to_be_visible()
    # grouped under month headings, newest first; the old photo lands in its own month
    this_month = dt.datetime.now(dt.UTC).strftime("%B %Y")
    expect(page.locator("#timeline h2")).to_have_text([this_month, "July 2019"])
    # the picture really arrives and decodes (not just an <img> with a broken link)
    page.wait_for_function("() => document.querySelector('#timeline img').complete")
    assert page.evaluate("document.querySelector('#timeline img').naturalWidth") == 320
    assert page.evaluate("document.querySelector('#timeline img').src").endswith("/thumb"), "never the original"

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.get_by_label("Sign-in name").fill("mom")
    page.get_by_label("Password").fill("wrong password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("The name or password is not right.")
    page.get_by_label("Password").fill("correct horse")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("img", name="Jeju beach.jpg")).to_be_visible()


def test_pages_speak_korean_to_a_korean_browser(browser, live_server):
    server = live_server()
    http = server.session()
    http.post(server.url + "/api/v1/media?filename=a.jpg",
              data=media_files.jpeg("gold", taken="2024:05:05 10:00:00", offset="+09:00"))
    page = browser.new_page(locale="ko-KR")
    page.goto(server.url + "/")
    expect(page.get_by_role("heading", name="로그인")).to_be_visible()
    assert page.evaluate("document.documentElement.lang") == "ko"
    page.get_by_label("로그인 이름").fill("mom")
    page.get_by_label("비밀번호").fill("correct horse")
    page.get_by_role("button", name="로그인").click()
    expect(page.locator("#timeline h2")).to_have_text(["2024년 5월"])


def test_a_long_timeline_loads_as_you_scroll(browser, live_server, tmp_path):
    server = live_server()
    http = server.session()
    for n in range(130):  # more than one page of 100
        day = 1 + n % 28
        http.post(server.url + f"/api/v1/media?filename={n}.jpg",
                  data=media_files.jpeg((n, 100, 150), size=(16, 16), taken=f"20{10 + n // 28}:03:{day:02} 12:00:00"))
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    page.goto(server.url + "/signin")
    page.get_by_label("Sign-in name").fill("mom")
    page.get_by_label("Password").fill("correct horse")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#timeline h2").first).to_have_text("March 2014")
    first_screen = page.locator("#timeline li").count()
    assert 0 < first_screen <= 200, "only what is near the screen is loaded at first"
    for _ in range(20):
        page.mouse.wheel(0, 4000)
        page.wait_for_timeout(150)
    expect(page.locator("#timeline li")).to_have_count(130)
    expect(page.locator("#timeline h2").last).to_have_text("March 2010")


def sign_in(page, server, username="mom", password="correct horse"):
    page.goto(server.url + "/signin")
    page.get_by_label("Sign-in name").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Your photos")).to_be_visible()
    page.wait_for_function("() => window.Picup && window.Picup.timeline")  # the page's scripts are running


def wait_rendered(http, server, count):
    import time

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        items = http.get(server.url + "/api/v1/media?limit=500").json()["items"]
        if len(items) == count and all(m["render"]["status"] == "ready" for m in items):
            return items
        time.sleep(0.2)
    raise AssertionError("the worker did not render everything in time")


def test_the_viewer_moves_with_keys_swipes_and_buttons_and_plays_video(browser, live_server):
    server = live_server()
    http = server.session()
    for day, colour in ((3, "red"), (2, "green"), (1, "blue")):
        http.post(server.url + f"/api/v1/media?filename={colour}.jpg",
                  data=media_files.jpeg(colour, size=(640, 480), taken=f"2024:05:0{day} 10:00:00", offset="+09:00"))
    http.post(server.url + "/api/v1/media?filename=clip.mp4",
              data=media_files.video("mp4", frames=48), params={"last_modified": "1577836800000"})  # 2020
    wait_rendered(http, server, 4)
    page = browser.new_page(viewport={"width": 1440, "height": 900}, has_touch=True)
    sign_in(page, server)
    page.get_by_role("button", name="Open red.jpg").click()
    viewer = page.get_by_role("dialog", name="Photo viewer")
    expect(viewer).to_be_visible()
    expect(viewer.get_by_role("img", name="red.jpg")).to_be_visible()
    expect(viewer.locator(".caption")).to_have_text("Friday, May 3, 2024 at 10:00 AM")
    assert viewer.get_by_role("img", name="red.jpg").get_attribute("src").endswith("/preview")
    # zoom: the original itself, at its own size; and back
    viewer.get_by_role("button", name="See it bigger").click()
    page.wait_for_function("() => document.querySelector('#viewer img').src.endsWith('/original')"
                           " && document.querySelector('#viewer img').complete")
    assert page.evaluate("document.querySelector('#viewer img').naturalWidth") == 640
    viewer.get_by_role("button", name="Fit to the screen").click()
    assert viewer.get_by_role("img", name="red.jpg").get_attribute("src").endswith("/preview")
    page.keyboard.press("ArrowRight")
    expect(viewer.get_by_role("img", name="green.jpg")).to_be_visible()
    viewer.get_by_role("button", name="Next").click()
    expect(viewer.get_by_role("img", name="blue.jpg")).to_be_visible()
    # swipe right: back to the previous photo
    stage = viewer.locator(".stage")
    box = stage.bounding_box()
    y = box["y"] + box["height"] / 2
    page.evaluate("""([x0, x1, y]) => {
        const stage = document.querySelector('#viewer .stage');
        const touch = (x) => new Touch({identifier: 1, target: stage, clientX: x, clientY: y});
        stage.dispatchEvent(new TouchEvent('touchstart', {changedTouches: [touch(x0)], bubbles: true}));
        stage.dispatchEvent(new TouchEvent('touchend', {changedTouches: [touch(x1)], bubbles: true}));
    }""", [box["x"] + 100, box["x"] + 400, y])
    expect(viewer.get_by_role("img", name="green.jpg")).to_be_visible()
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    video = viewer.locator("video")
    expect(video).to_be_visible()
    video.evaluate("v => { v.muted = true; return v.play(); }")
    page.wait_for_function("() => document.querySelector('#viewer video').currentTime > 0.5")
    assert viewer.get_by_role("link", name="Download").get_attribute("href").endswith("/original?download=1")
    page.keyboard.press("Escape")
    expect(viewer).to_be_hidden()


def test_delete_undo_delete_again_and_put_back_from_the_trash(browser, live_server):
    server = live_server()
    http = server.session()
    http.post(server.url + "/api/v1/media?filename=cake.jpg", data=media_files.jpeg("pink", size=(320, 240)))
    wait_rendered(http, server, 1)
    page = browser.new_page(viewport={"width": 820, "height": 1180})
    sign_in(page, server)
    page.get_by_role("button", name="Open cake.jpg").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete").click()
    expect(page.get_by_role("status")).to_contain_text("Moved to the trash.")
    expect(page.get_by_role("button", name="Open cake.jpg")).to_have_count(0)
    page.get_by_role("status").get_by_role("button", name="Undo").click()
    expect(page.get_by_role("button", name="Open cake.jpg")).to_be_visible()
    page.get_by_role("button", name="Open cake.jpg").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete").click()
    expect(page.get_by_role("button", name="Open cake.jpg")).to_have_count(0)
    page.get_by_role("link", name="Trash").click()
    expect(page.get_by_role("heading", name="Trash")).to_be_visible()
    gone = (dt.datetime.now(dt.UTC) + dt.timedelta(days=30)).strftime("%B %-d, %Y")
    expect(page.get_by_text(f"cake.jpg · Gone for good on {gone}")).to_be_visible()
    page.get_by_role("button", name="Put back").click()
    expect(page.get_by_text("cake.jpg is back in your photos.")).to_be_visible()
    expect(page.get_by_text("The trash is empty.")).to_be_visible()
    page.get_by_role("link", name="Photos").click()
    expect(page.get_by_role("button", name="Open cake.jpg")).to_be_visible()
