"""The TV page in a real browser: it moves on by itself, picks up the owner's changes and
new photos, says so when turned off, works with JavaScript off."""

from playwright.sync_api import expect

from tests import media_files
from tests.test_pages_browser import wait_rendered


def make_show(server, colours, **settings):
    http = server.session()
    ids = []
    for day, colour in enumerate(colours, start=1):
        answer = http.post(server.url + f"/api/v1/media?filename={colour}.jpg",
                           data=media_files.jpeg(colour, size=(640, 480), taken=f"2024:05:{day:02} 10:00:00"))
        ids.append(answer.json()["media"]["id"])
    wait_rendered(http, server, len(colours))
    album = http.post(server.url + "/api/v1/albums", json={"title": "Living room"}).json()["album"]
    http.post(server.url + f"/api/v1/albums/{album['id']}/media", json={"media_ids": ids}).raise_for_status()
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

