"""Stored script through names: an album title, a person's name and a file name that
carry HTML show as the text they are on every page that shows them, and never run."""

from playwright.sync_api import expect

from tests import media_files
from tests.test_pages_browser import sign_in, wait_rendered

EVIL = '<img src=x onerror="window.__xss=1">'


def test_html_in_names_is_shown_as_text_and_never_runs(browser, live_server):
    server = live_server()
    http = server.session()
    http.post(server.url + "/api/v1/users", json={"username": "dad", "password": "another horse",
                                                  "display_name": "Dad " + EVIL}).raise_for_status()
    media = http.post(server.url + "/api/v1/media?filename=" + requests_quote(EVIL + ".jpg"),
                      data=media_files.jpeg("teal", size=(320, 240))).json()["media"]
    wait_rendered(http, server, 1)
    album = http.post(server.url + "/api/v1/albums", json={"title": "Jeju " + EVIL}).json()["album"]
    http.post(server.url + f"/api/v1/albums/{album['id']}/media", json={"media_ids": [media["id"]]})
    show = http.post(server.url + "/api/v1/slideshows", json={"album_id": album["id"]}).json()["slideshow"]
    context = browser.new_context()
    try:
        page = context.new_page()
        sign_in(page, server)
        for path, text in [("/albums", "Jeju " + EVIL), (f"/albums/{album['id']}", "Jeju " + EVIL),
                           ("/family", "Dad " + EVIL), ("/slideshows", "Jeju " + EVIL)]:
            page.goto(server.url + path)
            expect(page.get_by_text(text, exact=False).first).to_be_visible()
            assert page.evaluate("window.__xss") is None, path
            assert page.title().count("<") == (1 if path.startswith("/albums/") else 0), path
        page.goto(server.url + "/")
        page.get_by_role("button", name="Open " + EVIL + ".jpg").click()
        assert page.evaluate("window.__xss") is None, "viewer"
        tv = context.new_page()
        tv.goto(show["url"].replace("http://127.0.0.1:" + str(server.port), server.url))
        expect(tv.get_by_text("Jeju " + EVIL)).to_be_visible()
        assert tv.title() == "Jeju " + EVIL and tv.evaluate("window.__xss") is None, "TV"
    finally:
        context.close()


def requests_quote(text):
    from urllib.parse import quote

    return quote(text, safe="")
