"""The TV page in a real browser: it moves on by itself, picks up the owner's changes and
new photos, says so when turned off, works with JavaScript off."""

import io
import re

import zxingcpp
from PIL import Image
from playwright.sync_api import expect

from tests import media_files
from tests.test_pages_browser import wait_rendered


def make_show(server, colours, slideshow=True, **settings):
    http = server.session()
    ids = []
    for day, colour in enumerate(colours, start=1):
        answer = http.post(server.url + f"/api/v1/media?filename={colour}.jpg",
                           data=media_files.jpeg(colour, size=(640, 480), taken=f"2024:05:{day:02} 10:00:00"))
        ids.append(answer.json()["media"]["id"])
    wait_rendered(http, server, len(colours))
    album = http.post(server.url + "/api/v1/albums", json={"title": "Living room"}).json()["album"]
    http.post(server.url + f"/api/v1/albums/{album['id']}/media", json={"media_ids": ids}).raise_for_status()
    if not slideshow:
        return http, album, ids, None
    show = http.post(server.url + "/api/v1/slideshows",
                     json={"album_id": album["id"], **settings}).json()["slideshow"]
    return http, album, ids, show


def test_the_tv_moves_on_picks_up_changes_and_new_photos_and_is_turned_off(browser, live_server):
    server = live_server()
    http, album, ids, show = make_show(server, ("red", "green", "blue"), seconds=3, order="oldest")
    tv = browser.new_page(viewport={"width": 1920, "height": 1080})
    tv.goto(show["url"].replace("http://127.0.0.1:" + str(server.port), server.url))
    expect(tv.get_by_text("Living room")).to_be_visible()
    tv.wait_for_function("() => window.PicupTV && window.PicupTV.shown >= 3", timeout=20000)
    seen = tv.evaluate("window.PicupTV.current")
    assert seen in ids

    # the owner turns the clock on; the TV shows it within its next look at the settings
    http.patch(server.url + f"/api/v1/slideshows/{show['id']}", json={"show_clock": True}).raise_for_status()
    tv.evaluate("window.PicupTV.refresh && window.PicupTV.refresh()")
    tv.wait_for_function("() => { const c = document.getElementById('tv-clock');"
                         " return c && c.offsetParent !== null && /\\d{1,2}:\\d{2}/.test(c.textContent); }",
                         timeout=70000)

    # a photo added to the album joins the rotation without a reload
    new = http.post(server.url + "/api/v1/media?filename=gold.jpg",
                    data=media_files.jpeg("gold", size=(640, 480), taken="2024:05:09 10:00:00")).json()["media"]["id"]
    wait_rendered(http, server, 4)
    http.post(server.url + f"/api/v1/albums/{album['id']}/media", json={"media_ids": [new]}).raise_for_status()
    tv.evaluate("window.PicupTV.refresh && window.PicupTV.refresh()")
    tv.wait_for_function(f"() => window.PicupTV.current === {new}", timeout=70000)

    # revoked: the next look says so in words
    http.delete(server.url + f"/api/v1/slideshows/{show['id']}").raise_for_status()
    tv.evaluate("window.PicupTV.refresh && window.PicupTV.refresh()")
    expect(tv.get_by_role("heading", name="This slideshow was turned off")).to_be_visible(timeout=70000)


def test_with_javascript_off_the_plain_page_still_moves_on(browser, live_server):
    server = live_server()
    _, _, ids, show = make_show(server, ("navy", "olive"), seconds=3, order="oldest")
    context = browser.new_context(java_script_enabled=False)
    try:
        tv = context.new_page()
        tv.goto(server.url + f"/tv/{show['token']}")
        first = tv.locator("img").first.get_attribute("src")
        assert f"/media/{ids[0]}/display" in first
        tv.wait_for_url("**plain=1**", timeout=15000)
        tv.wait_for_function(f"() => [...document.images].some(i => i.src.includes('/media/{ids[1]}/display')"
                             " && i.complete && i.naturalWidth > 0)", timeout=15000)
    finally:
        context.close()



def test_a_person_puts_an_album_on_the_tv_and_looks_after_the_link(browser, live_server):
    from tests.test_pages_browser import sign_in

    server = live_server()
    http, album, ids, _ = make_show(server, ("teal", "plum"), slideshow=False)
    context = browser.new_context(viewport={"width": 1280, "height": 900}, timezone_id="Asia/Seoul")
    try:
        page = context.new_page()
        sign_in(page, server)

        # "Show on TV" on the album: the address to type, the code, a QR code and the link
        page.goto(server.url + f"/albums/{album['id']}")
        page.get_by_role("button", name="Show on TV").click()
        dialog = page.get_by_role("dialog", name="Show on TV: Living room")
        expect(dialog.locator(".tv-code-url")).to_have_text(server.url + "/tv")
        expect(dialog.locator(".tv-code")).to_have_text(re.compile(r"^[A-HJ-NP-Z]{3} [A-HJ-NP-Z]{3}$"))
        link = dialog.get_by_label("Slideshow link").input_value()
        assert re.fullmatch(re.escape(server.url) + r"/tv/[A-Za-z0-9_-]{22}", link)
        # the QR code, as the screen shows it, reads back as the link (a tablet's camera, in effect)
        qr = dialog.get_by_role("img", name="QR code of the slideshow link")
        page.wait_for_function("() => { const i = document.querySelector('.tv-qr');"
                               " return i.complete && i.naturalWidth > 0; }")
        assert qr.bounding_box()["width"] >= 200, "big enough for a tablet's camera"
        picture = Image.open(io.BytesIO(qr.screenshot())).convert("L")
        assert [code.text for code in zxingcpp.read_barcodes(picture)] == [link]

        # the code, typed on the TV's remote, opens the slideshow
        code = dialog.locator(".tv-code").inner_text().replace(" ", "")
        tv = context.browser.new_page(viewport={"width": 1280, "height": 720})
        tv.goto(server.url + "/tv")
        tv.get_by_label("Type the 6 letters shown in Picup").fill(code.lower())
        tv.get_by_role("button", name="Show the photos").click()
        tv.wait_for_url(link)
        tv.wait_for_function("() => window.PicupTV && window.PicupTV.shown >= 1")

        # how it plays, from the dialog: the TV picks it up
        dialog.get_by_text("How it plays").click()
        dialog.get_by_label("Show a clock").check()
        dialog.get_by_label("Dark at night").check()
        dialog.get_by_label("Dark from").fill("00:00")
        dialog.get_by_label("Back on at").fill("23:59")
        dialog.get_by_role("button", name="Save").click()
        expect(dialog.get_by_text("Saved. The TV changes within a minute.")).to_be_visible()
        tv.evaluate("window.PicupTV.refresh()")
        expect(tv.locator("#tv-quiet")).to_be_visible(timeout=15000)
        dialog.get_by_role("button", name="Done").click()

        # the Slideshows page: pause, a new code, an end date, turn off
        page.get_by_role("link", name="Slideshows").click()
        card = page.locator(".slideshow", has_text="Living room")
        expect(card.get_by_text("Playing")).to_be_visible()
        expect(card.get_by_text("A screen last checked in")).to_be_visible()
        card.get_by_role("button", name="Pause").click()
        expect(card.get_by_text("Paused")).to_be_visible()
        card = page.locator(".slideshow", has_text="Living room")
        card.get_by_text("How it plays").click()
        card.get_by_label("Dark at night").uncheck()
        card.get_by_label("Show until").fill("2031-12-31")
        card.get_by_role("button", name="Save").click()
        expect(card.get_by_text("Plays until December 31, 2031")).to_be_visible()
        shown = http.get(server.url + "/api/v1/slideshows").json()["slideshows"][0]
        assert shown["paused"] is True and shown["settings"]["quiet_from"] is None
        assert shown["settings"]["show_clock"] is True
        assert shown["ends_at"] == "2031-12-31T15:00:00Z", "the end of that day in Seoul"

        card.get_by_role("button", name="Link and code").click()
        again = page.get_by_role("dialog", name="Show on TV")
        expect(again.locator(".tv-code")).to_have_text(re.compile(r"^[A-HJ-NP-Z]{3} [A-HJ-NP-Z]{3}$"))
        assert again.locator(".tv-code").inner_text().replace(" ", "") != code, "the used code is not shown again"
        again.get_by_role("button", name="Done").click()

        card.get_by_role("button", name="Turn off").click()
        page.get_by_role("dialog", name="Turn off “Living room”?").get_by_role("button", name="Turn off").click()
        expect(page.get_by_text("No slideshows yet.")).to_be_visible()
        tv.evaluate("window.PicupTV.refresh()")
        expect(tv.get_by_role("heading", name="This slideshow was turned off")).to_be_visible(timeout=15000)
    finally:
        context.close()


def test_the_photos_page_shows_favourites_on_the_tv_and_the_heart_marks_them(browser, live_server):
    from tests.test_pages_browser import sign_in

    server = live_server()
    http, _, ids, _ = make_show(server, ("coral", "khaki"), order="oldest")
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        sign_in(page, server)
        page.locator("#timeline .tile").first.click()
        viewer = page.get_by_role("dialog", name="Photo viewer")
        heart = viewer.get_by_role("button", name="Favourite")
        expect(heart).to_have_attribute("aria-pressed", "false")
        heart.click()
        expect(heart).to_have_attribute("aria-pressed", "true")
        viewer.get_by_role("button", name="Close").click()
        hearts = [m["id"] for m in http.get(server.url + "/api/v1/media").json()["items"] if m["favorite"]]
        assert hearts == [ids[-1]], "the newest photo, first on the page, has the heart"

        page.get_by_role("button", name="Show on TV").click()
        dialog = page.get_by_role("dialog", name="Show on TV")
        dialog.get_by_role("button", name="Favourites").click()
        link = dialog.get_by_label("Slideshow link")
        expect(link).to_have_value(re.compile(r"/tv/"))
        feed = http.get(link.input_value() + "/feed").json()
        assert feed["title"] == "Favourites" and [i["id"] for i in feed["items"]] == [ids[-1]]
    finally:
        context.close()


def test_the_tv_keeps_showing_through_a_server_restart_and_carries_on_after(browser, live_server):
    server = live_server()
    http, album, ids, show = make_show(server, ("red", "green", "blue"), seconds=1, order="oldest")
    tv = browser.new_page(viewport={"width": 1280, "height": 720})
    problems = []
    tv.on("pageerror", lambda error: problems.append(str(error)))
    tv.goto(server.url + f"/tv/{show['token']}")
    tv.wait_for_function("() => window.PicupTV.shown >= 4", timeout=30000)  # every photo loaded once

    server.stop()  # the server goes away: the photos it already sent keep going round
    down = tv.evaluate("window.PicupTV.shown")
    tv.evaluate("window.PicupTV.refresh()")  # a look at the feed fails, quietly
    tv.wait_for_function(f"() => window.PicupTV.shown >= {down + 3}", timeout=30000)
    expect(tv.locator("#tv-message")).to_be_hidden()
    assert tv.locator(".layer.on img.photo").first.evaluate("i => i.complete && i.naturalWidth > 0")

    server.start()  # back, same data: a new photo joins without anyone touching the TV
    http = server.session()
    new = http.post(server.url + "/api/v1/media?filename=gold.jpg",
                    data=media_files.jpeg("gold", size=(640, 480), taken="2024:05:09 10:00:00")).json()["media"]["id"]
    wait_rendered(http, server, 4)
    http.post(server.url + f"/api/v1/albums/{album['id']}/media", json={"media_ids": [new]}).raise_for_status()
    tv.evaluate("window.PicupTV.refresh()")
    tv.wait_for_function(f"() => window.PicupTV.current === {new}", timeout=60000)
    assert not problems, problems
