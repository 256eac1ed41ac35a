"""Every page at phone, tablet, laptop and TV widths: screenshots for people to look at,
an axe-core check for serious accessibility problems, and the rules for elderly users
(text at least 18 px, touch targets at least 48 × 48 px, nothing wider than the screen).

Screenshots go to ``test-artifacts/screenshots/`` (or ``$PICUP_TEST_ARTIFACTS``).
"""

import os
import re
from pathlib import Path

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import expect

from tests import media_files
from tests.test_pages_browser import sign_in, wait_rendered

ARTIFACTS = Path(os.environ.get("PICUP_TEST_ARTIFACTS", Path(__file__).parent.parent / "test-artifacts"))
WIDTHS = {"phone": (390, 844), "tablet": (820, 1180), "laptop": (1440, 900), "tv": (1920, 1080)}

# What the checks look at on every page: buttons, links, fields; their box and their text size.
MEASURE = """() => {
  const visible = (el) => { const r = el.getBoundingClientRect(); const s = getComputedStyle(el);
    return r.width > 0 && r.height > 0 && s.visibility !== 'hidden' && !el.closest('[hidden]'); };
  const targets = [...document.querySelectorAll('button, a[href], input:not([type=file]), select, label.button')]
    .filter(visible).filter((el) => !el.closest('.skip') && !el.closest('p, li.person p'))
    .map((el) => el.matches('input[type=checkbox], input[type=radio]') && el.closest('label') ? el.closest('label') : el)
    .map((el) => { const r = el.getBoundingClientRect();
      return {what: el.outerHTML.slice(0, 80), width: r.width, height: r.height}; });
  const texts = [...document.querySelectorAll('p, li, label, button, a, h1, h2, span, input:not([type=checkbox]), select')]
    .filter(visible).filter((el) => el.textContent.trim() || el.value)
    .map((el) => ({what: el.outerHTML.slice(0, 80), size: parseFloat(getComputedStyle(el).fontSize)}));
  return {targets, texts, overflow: document.documentElement.scrollWidth - window.innerWidth};
}"""


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    """A family with photos, a video, an album shared with a member, and something in the trash."""
    from tests.conftest import LiveServer

    server = LiveServer(tmp_path_factory.mktemp("a11y") / "data").start()
    http = server.session()
    http.post(server.url + "/api/v1/users",
              json={"username": "dad", "password": "another horse", "display_name": "Dad"}).raise_for_status()
    ids = []
    for day, colour in enumerate(("tomato", "gold", "seagreen", "steelblue", "orchid", "sienna"), start=1):
        answer = http.post(server.url + f"/api/v1/media?filename=day{day}.jpg",
                           data=media_files.jpeg(colour, size=(800, 600), taken=f"2024:05:{day:02} 10:00:00"))
        ids.append(answer.json()["media"]["id"])
    http.post(server.url + "/api/v1/media?filename=clip.mp4", data=media_files.video("mp4", frames=24))
    wait_rendered(http, server, 7)
    album = http.post(server.url + "/api/v1/albums", json={"title": "Jeju 2024"}).json()["album"]
    http.post(server.url + f"/api/v1/albums/{album['id']}/media", json={"media_ids": ids[:4]}).raise_for_status()
    dad = [u for u in http.get(server.url + "/api/v1/users").json()["users"] if u["username"] == "dad"][0]
    http.put(server.url + f"/api/v1/albums/{album['id']}/members",
             json={"members": [{"user_id": dad["id"], "role": "add"}]}).raise_for_status()
    http.delete(server.url + f"/api/v1/media/{ids[-1]}").raise_for_status()
    yield server, album
    server.stop()


def _open_viewer(page):
    page.get_by_role("button", name="Open day1.jpg").click()
    expect(page.get_by_role("dialog", name="Photo viewer").get_by_role("img")).to_be_visible()


def _open_album_picker(page):
    page.get_by_role("button", name="Select photos").click()
    page.get_by_role("button", name="Open day2.jpg").click()
    page.locator("#selection").get_by_role("button", name="Add to album").click()
    expect(page.get_by_role("dialog", name="Add to which album?")).to_be_visible()


def _open_share(page):
    page.get_by_role("button", name="Share").click()
    expect(page.get_by_role("dialog", name="Who can see this album?")).to_be_visible()


def _show_on_tv(page):
    page.get_by_role("button", name="Show on TV").click()
    dialog = page.get_by_role("dialog", name="Show on TV: Jeju 2024")
    expect(dialog.locator(".tv-code")).to_have_text(re.compile(r"\w{3} \w{3}"))
    dialog.get_by_text("How it plays").click()


def _tv_settings(page):
    page.locator(".slideshow").first.get_by_text("How it plays").click()


PAGES = [
    # name, path, signed in, what to do on the page before looking
    ("signin", "/signin", False, None),
    ("photos", "/", True, None),
    ("viewer", "/", True, _open_viewer),
    ("choose-album", "/", True, _open_album_picker),
    ("albums", "/albums", True, None),
    ("album", "/albums/{album}", True, None),
    ("album-share", "/albums/{album}", True, _open_share),
    ("show-on-tv", "/albums/{album}", True, _show_on_tv),
    ("slideshows", "/slideshows", True, _tv_settings),
    ("trash", "/trash", True, None),
    ("family", "/family", True, None),
    ("status", "/status", True, None),
    ("settings", "/settings", True, None),
    ("not-found", "/albums/999999", True, None),
]


@pytest.mark.parametrize("name,path,signed_in,action", PAGES, ids=[p[0] for p in PAGES])
def test_every_page_is_accessible_and_fits_every_screen(browser, library, name, path, signed_in, action):
    server, album = library
    context = browser.new_context(locale="en-US")
    try:
        page = context.new_page()
        problems = []
        page.on("pageerror", lambda error: problems.append(f"script error: {error}"))
        if signed_in:
            sign_in(page, server)
        for width_name, (width, height) in WIDTHS.items():
            page.set_viewport_size({"width": width, "height": height})
            page.goto(server.url + path.format(album=album["id"]))
            page.wait_for_load_state("networkidle")
            if action:
                action(page)
            page.wait_for_timeout(100)
            shot = ARTIFACTS / "screenshots" / f"{name}-{width_name}.png"
            shot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(shot), full_page=action is None)

            found = Axe().run(page).response["violations"]
            for violation in found:
                if violation["impact"] in ("serious", "critical"):
                    where = [node["target"] for node in violation["nodes"]][:3]
                    problems.append(f"{width_name}: axe {violation['id']} ({violation['impact']}) at {where}")
            measured = page.evaluate(MEASURE)
            if measured["overflow"] > 1:
                problems.append(f"{width_name}: page is {measured['overflow']} px wider than the screen")
            for target in measured["targets"]:
                if target["height"] < 47.5 or target["width"] < 47.5:
                    problems.append(f"{width_name}: target {target['width']:.0f}×{target['height']:.0f} "
                                    f"{target['what']}")
            small = [t for t in measured["texts"] if t["size"] < 15.9]
            body = page.evaluate("parseFloat(getComputedStyle(document.body).fontSize)")
            if body < 18:
                problems.append(f"{width_name}: base text is {body} px")
            problems += [f"{width_name}: text of {t['size']} px: {t['what']}" for t in small]
        assert not problems, "\n".join(dict.fromkeys(problems))
    finally:
        context.close()


def test_korean_pages_pass_the_same_checks(browser, library):
    """The longest words are often Korean ones: the pages still fit and pass axe in Korean."""
    server, album = library
    context = browser.new_context(locale="ko-KR", viewport={"width": 390, "height": 844})
    try:
        page = context.new_page()
        page.goto(server.url + "/signin")
        page.get_by_label("로그인 이름").fill("mom")
        page.get_by_label("비밀번호").fill("correct horse")
        page.get_by_role("button", name="로그인").click()
        expect(page.get_by_role("heading", name="내 사진")).to_be_visible()
        problems = []
        for name, path in (("photos", "/"), ("albums", "/albums"), ("album", f"/albums/{album['id']}"),
                           ("family", "/family"), ("settings", "/settings"), ("trash", "/trash")):
            page.goto(server.url + path)
            page.wait_for_load_state("networkidle")
            page.screenshot(path=str(ARTIFACTS / "screenshots" / f"ko-{name}-phone.png"), full_page=True)
            for violation in Axe().run(page).response["violations"]:
                if violation["impact"] in ("serious", "critical"):
                    problems.append(f"{name}: axe {violation['id']} at {[n['target'] for n in violation['nodes']][:3]}")
            overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            if overflow > 1:
                problems.append(f"{name}: {overflow} px wider than a phone")
        assert not problems, "\n".join(problems)
    finally:
        context.close()


def test_the_first_run_setup_page_is_accessible_and_fits(browser, live_server):
    server = live_server()
    page = browser.new_page(locale="en-US")
    problems = []
    for width_name, (width, height) in WIDTHS.items():
        page.set_viewport_size({"width": width, "height": height})
        page.goto(server.url + "/")
        expect(page.get_by_role("heading", name="Welcome to Picup")).to_be_visible()
        page.screenshot(path=str(ARTIFACTS / "screenshots" / f"setup-{width_name}.png"), full_page=True)
        problems += [f"{width_name}: axe {v['id']}" for v in Axe().run(page).response["violations"]
                     if v["impact"] in ("serious", "critical")]
        measured = page.evaluate(MEASURE)
        problems += [f"{width_name}: target {t['what']}" for t in measured["targets"]
                     if t["height"] < 47.5 or t["width"] < 47.5]
        problems += [f"{width_name}: text of {t['size']} px: {t['what']}" for t in measured["texts"] if t["size"] < 15.9]
    assert not problems, "\n".join(problems)
