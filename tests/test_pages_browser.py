"""The first visit in a real browser (Debian's Chromium driven by Playwright)."""

import datetime as dt

import pytest
from playwright.sync_api import expect, sync_playwright

from tests import media_files
from tests.browser import launch



@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        browser = launch(playwright)
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
    old_photo = tmp_path / "summer 2019.jpg"
    old_photo.write_bytes(media_files.jpeg("gold", size=(320, 240), taken="2019:07:14 15:30:00", offset="+09:00"))
    not_a_photo = tmp_path / "letter.jpg"
    not_a_photo.write_text("Dear grandma")
    page.set_input_files("#add-files", [str(photo), str(old_photo), str(not_a_photo)])
    expect(page.get_by_text("Added Jeju beach.jpg")).to_be_visible()
    expect(page.get_by_text('letter.jpg could not be added: "letter.jpg" is not a photo or video')).to_be_visible()
    expect(page.get_by_role("img", name="Jeju beach.jpg")).to_be_visible()
    # grouped under month headings, newest first; the old photo lands in its own month
    this_month = dt.datetime.now(dt.UTC).strftime("%B %Y")
    expect(page.locator("#timeline h2")).to_have_text([this_month, "July 2019"])
    # the picture really arrives and decodes (not just an <img> with a broken link)
    page.wait_for_function("document.querySelector('#timeline img').complete")
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
