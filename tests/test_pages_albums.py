"""Albums, the family page and settings in a real browser, as Mom and Dad would use them."""

from playwright.sync_api import expect

from tests import media_files
from tests.test_pages_browser import sign_in, wait_rendered


def family_with_photos(server, colours=("red", "green", "blue")):
    http = server.session()
    http.post(server.url + "/api/v1/users",
              json={"username": "dad", "password": "another horse", "display_name": "Dad"}).raise_for_status()
    for day, colour in enumerate(colours, start=1):
        http.post(server.url + f"/api/v1/media?filename={colour}.jpg",
                  data=media_files.jpeg(colour, size=(480, 360), taken=f"2023:09:{day:02} 09:00:00"))
    wait_rendered(http, server, len(colours))
    return http


def test_make_an_album_fill_it_set_a_cover_take_one_out_rename_share_and_delete(browser, live_server):
    server = live_server()
    http = family_with_photos(server)
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    sign_in(page, server)

    page.get_by_role("link", name="Albums").click()
    expect(page.get_by_text("No albums yet.")).to_be_visible()
    page.get_by_label("Name of a new album").fill("Jeju trip")
    page.get_by_role("button", name="Make album").click()
    expect(page.get_by_role("heading", name="Jeju trip")).to_be_visible()
    expect(page.get_by_text("This album is empty.")).to_be_visible()

    # choose photos for it from the timeline
    page.get_by_role("link", name="Choose from your photos").click()
    expect(page.get_by_text('Choose the photos to add to "Jeju trip"')).to_be_visible()
    page.get_by_role("button", name="Open red.jpg").click()
    page.get_by_role("button", name="Open blue.jpg").click()
    expect(page.locator("#selection")).to_contain_text("2 selected")
    expect(page.get_by_role("button", name="Open red.jpg")).to_have_attribute("aria-pressed", "true")
    page.locator("#selection").get_by_role("button", name="Add to album").click()
    expect(page.get_by_role("heading", name="Jeju trip")).to_be_visible()
    expect(page.locator("#timeline img")).to_have_count(2)

    # the viewer: make blue the cover
    page.get_by_role("button", name="Open blue.jpg").click()
    page.get_by_role("dialog").get_by_role("button", name="Use as album cover").click()
    expect(page.get_by_role("status")).to_contain_text("This is now the album cover.")
    page.keyboard.press("Escape")

    # take red out: it leaves the album, not the library, and can be undone
    page.get_by_role("button", name="Select photos").click()
    page.get_by_role("button", name="Open red.jpg").click()
    page.locator("#selection").get_by_role("button", name="Take out of album").click()
    expect(page.get_by_role("status")).to_contain_text("Took 1 out of the album. It is still in your photos.")
    expect(page.get_by_role("button", name="Open red.jpg")).to_have_count(0)
    page.get_by_role("status").get_by_role("button", name="Undo").click()
    expect(page.get_by_role("button", name="Open red.jpg")).to_be_visible()
    page.get_by_role("button", name="Select photos").click()
    page.get_by_role("button", name="Open red.jpg").click()
    page.locator("#selection").get_by_role("button", name="Take out of album").click()
    expect(page.get_by_role("button", name="Open red.jpg")).to_have_count(0)

    # rename
    page.get_by_role("button", name="Rename").click()
    page.get_by_role("dialog").get_by_label("Album name").fill("Jeju 2023")
    page.get_by_role("dialog").get_by_role("button", name="Save").click()
    expect(page.get_by_role("heading", name="Jeju 2023")).to_be_visible()

    # share with Dad, who can see it
    page.get_by_role("button", name="Share").click()
    page.get_by_role("dialog").get_by_label("Dad").select_option(label="Can see it")
    page.get_by_role("dialog").get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_contain_text("Sharing saved.")

    page.get_by_role("link", name="Albums").click()
    card = page.get_by_role("link", name="Jeju 2023")
    expect(card).to_contain_text("1 photo or video")
    expect(card.locator("img")).to_have_attribute("src", f"/api/v1/media/{_id(http, server, 'blue.jpg')}/thumb")

    dad = browser.new_page(viewport={"width": 390, "height": 844})
    sign_in(dad, server, "dad", "another horse")
    dad.get_by_role("link", name="Albums").click()
    expect(dad.get_by_role("link", name="Jeju 2023")).to_contain_text("Shared by mom")
    dad.get_by_role("link", name="Jeju 2023").click()
    expect(dad.get_by_role("img", name="blue.jpg")).to_be_visible()
    expect(dad.get_by_role("button", name="Rename")).to_have_count(0)
    expect(dad.get_by_role("button", name="Delete album")).to_have_count(0)
    dad.get_by_role("link", name="Photos", exact=True).click()
    expect(dad.get_by_text("No photos yet.")).to_be_visible()  # Dad's own library is his own

    # delete the album: asked in words first; the photos stay
    page.get_by_role("link", name="Jeju 2023").click()
    page.get_by_role("button", name="Delete album").click()
    question = page.get_by_role("dialog", name='Delete the album "Jeju 2023"?')
    expect(question).to_contain_text("Every photo in it stays in your photos.")
    question.get_by_role("button", name="Keep the album").click()
    expect(page.get_by_role("heading", name="Jeju 2023")).to_be_visible()
    page.get_by_role("button", name="Delete album").click()
    question.get_by_role("button", name="Delete album").click()
    expect(page.get_by_role("heading", name="Albums")).to_be_visible()
    expect(page.get_by_text("No albums yet.")).to_be_visible()
    page.get_by_role("link", name="Photos", exact=True).click()
    expect(page.locator("#timeline img")).to_have_count(3)


def _id(http, server, filename):
    items = http.get(server.url + "/api/v1/media").json()["items"]
    return [m["id"] for m in items if m["filename"] == filename][0]


def test_add_to_album_from_the_viewer_with_a_new_album(browser, live_server):
    server = live_server()
    http = family_with_photos(server, ("gold",))
    page = browser.new_page(viewport={"width": 820, "height": 1180})
    sign_in(page, server)
    page.get_by_role("button", name="Open gold.jpg").click()
    page.get_by_role("dialog", name="Photo viewer").get_by_role("button", name="Add to album").click()
    picker = page.get_by_role("dialog", name="Add to which album?")
    picker.get_by_label("Name of a new album").fill("Autumn")
    picker.get_by_role("button", name="Make this album and add").click()
    expect(page.get_by_role("status")).to_contain_text('Added 1 to "Autumn".')
    albums = http.get(server.url + "/api/v1/albums").json()["albums"]
    assert [(a["title"], a["media_count"]) for a in albums] == [("Autumn", 1)]
    # a second time, the album is there to choose
    page.get_by_role("dialog", name="Photo viewer").get_by_role("button", name="Add to album").click()
    expect(picker.get_by_role("button", name="Autumn")).to_be_visible()
    picker.get_by_role("button", name="Cancel").click()
    expect(picker).to_be_hidden()


def test_the_family_page_adds_a_member_resets_a_password_and_shows_who_sees_what(browser, live_server):
    server = live_server()
    http = family_with_photos(server, ("teal",))
    album = http.post(server.url + "/api/v1/albums", json={"title": "Grandkids"}).json()["album"]
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    sign_in(page, server)
    page.get_by_role("link", name="Family").click()
    page.get_by_label("Their name").fill("Grandpa")
    page.get_by_label("Sign-in name").fill("grandpa")
    page.get_by_label("Password", exact=True).fill("first password")
    page.get_by_role("button", name="Add a family member").click()
    expect(page.locator("#family-notice")).to_have_text("Grandpa was added.")
    grandpa_card = page.locator(".person", has_text="Grandpa")
    expect(grandpa_card).to_contain_text('Signs in as "grandpa"')
    expect(grandpa_card).to_contain_text("No albums yet.")

    grandpa_id = [u for u in http.get(server.url + "/api/v1/users").json()["users"] if u["username"] == "grandpa"][0]
    http.put(server.url + f"/api/v1/albums/{album['id']}/members",
             json={"members": [{"user_id": grandpa_id["id"], "role": "view"}]}).raise_for_status()
    page.reload()
    expect(grandpa_card).to_contain_text("Grandkids · can see")
    expect(page.locator(".person", has_text="mom")).to_contain_text("Grandkids · made it")

    grandpa = browser.new_page()
    sign_in(grandpa, server, "grandpa", "first password")
    page.get_by_role("button", name="Set a new password for Grandpa").click()
    page.get_by_role("dialog").get_by_label("New password").fill("second password")
    page.get_by_role("dialog").get_by_role("button", name="Set password").click()
    expect(page.locator("#family-notice")).to_have_text("Grandpa has a new password.")
    grandpa.reload()
    expect(grandpa.get_by_role("heading", name="Sign in")).to_be_visible()  # signed out everywhere
    sign_in(grandpa, server, "grandpa", "second password")
    expect(grandpa.get_by_role("link", name="Family")).to_have_count(0)
    grandpa.goto(server.url + "/family")
    expect(grandpa.get_by_text("Only the family's administrator can do that.")).to_be_visible()


def test_settings_change_the_language_and_the_password(browser, live_server):
    server = live_server()
    family_with_photos(server, ("navy",))
    page = browser.new_page(locale="en-US")
    sign_in(page, server)
    other_device = browser.new_page()
    sign_in(other_device, server)
    page.get_by_role("link", name="Settings").click()
    page.get_by_label("Language of the pages").select_option(label="한국어")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("heading", name="설정")).to_be_visible()
    page.get_by_role("link", name="사진", exact=True).click()
    expect(page.locator("#timeline h2")).to_have_text(["2023년 9월"])
    page.get_by_role("link", name="설정").click()
    page.get_by_label("지금 비밀번호").fill("correct horse")
    page.get_by_label("새 비밀번호").fill("a better horse")
    page.get_by_role("button", name="비밀번호 바꾸기").click()
    expect(page.locator("#settings-notice")).to_have_text("비밀번호를 바꿨습니다. 다른 기기는 로그아웃되었습니다.")
    other_device.reload()
    expect(other_device.get_by_role("heading", name="Sign in")).to_be_visible()
    page.get_by_label("화면 언어").select_option(label="이 기기와 같게")
    page.get_by_role("button", name="저장").click()
    expect(page.get_by_role("heading", name="Settings")).to_be_visible()


def test_signing_in_goes_back_to_the_page_asked_for_and_never_to_another_site(browser, live_server):
    server = live_server()
    family_with_photos(server, ("olive",))
    page = browser.new_page()
    page.goto(server.url + "/settings")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.get_by_label("Sign-in name").fill("mom")
    page.get_by_label("Password").fill("correct horse")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Settings")).to_be_visible()
    page.get_by_role("button", name="Sign out", exact=True).click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    for target in ("https://evil.example/", "//evil.example/", "/\\evil.example"):
        page.goto(server.url + "/signin?next=" + target)
        page.get_by_label("Sign-in name").fill("mom")
        page.get_by_label("Password").fill("correct horse")
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("heading", name="Your photos")).to_be_visible()
        assert page.url == server.url + "/"
        page.get_by_role("button", name="Sign out").click()
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
