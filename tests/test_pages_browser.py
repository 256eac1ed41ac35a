"""The first visit in a real browser (Debian's Chromium driven by Playwright)."""

import pytest
from playwright.sync_api import expect, sync_playwright

from tests import media_files

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield browser
        browser.close()


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
    not_a_photo = tmp_path / "letter.jpg"
    not_a_photo.write_text("Dear grandma")
    page.set_input_files("#add-files", [str(photo), str(not_a_photo)])
    expect(page.get_by_text("Added Jeju beach.jpg")).to_be_visible()
    expect(page.get_by_text('letter.jpg could not be added: "letter.jpg" is not a photo or video')).to_be_visible()
    expect(page.get_by_role("img", name="Jeju beach.jpg")).to_be_visible()
    expect(page.get_by_text("1 photos and videos")).to_be_visible()
    # the picture really arrives and decodes (not just an <img> with a broken link)
    page.wait_for_function("document.querySelector('#grid img').complete")
    assert page.evaluate("document.querySelector('#grid img').naturalWidth") == 320
    assert page.evaluate("document.querySelector('#grid img').src").endswith("/thumb"), "never the original"

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
    server.session()
    page = browser.new_page(locale="ko-KR")
    page.goto(server.url + "/")
    expect(page.get_by_role("heading", name="로그인")).to_be_visible()
    assert page.evaluate("document.documentElement.lang") == "ko"
