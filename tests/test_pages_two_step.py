"""Two-step sign-in and the devices list in real Chromium, as a parent sets it up with
their phone: scan the QR code, type the code, keep the recovery codes, sign in with it."""

import io
import time
from urllib.parse import parse_qs, urlsplit

import pyotp
import zxingcpp
from PIL import Image
from playwright.sync_api import expect

from tests.test_pages_browser import sign_in


def fresh_code(secret, after=None):
    """The app's code now; if it is the one used last, wait for the next one."""
    totp = pyotp.TOTP(secret)
    code = totp.now()
    while code == after:
        time.sleep(1)
        code = totp.now()
    return code


def test_a_parent_sets_up_two_step_sign_in_and_signs_in_with_a_code(browser, live_server):
    server = live_server()
    server.session().post(server.url + "/api/v1/users", json={"username": "dad", "password": "another horse"})
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        sign_in(page, server)
        page.goto(server.url + "/settings")
        section = page.locator("#two-step")
        expect(section.get_by_role("status")).to_have_text("Off.")
        section.get_by_role("button", name="Set up two-step sign-in").click()

        # the phone's camera reads the QR code: an otpauth:// address with the secret
        qr = section.get_by_role("img", name="QR code for your authenticator app")
        page.wait_for_function("() => { const i = document.querySelector('.two-step-qr');"
                               " return i.complete && i.naturalWidth > 0; }")
        read = zxingcpp.read_barcodes(Image.open(io.BytesIO(qr.screenshot())).convert("L"))
        assert len(read) == 1 and read[0].text.startswith("otpauth://totp/Picup:mom?")
        secret = parse_qs(urlsplit(read[0].text).query)["secret"][0]
        assert section.locator(".two-step-secret").inner_text().replace(" ", "") == secret, "the key as text too"

        section.get_by_label("Type the 6-digit code the app shows").fill("000000")
        section.get_by_role("button", name="Turn on").click()
        expect(section.get_by_role("alert")).to_contain_text("not right")
        used = fresh_code(secret)
        section.get_by_label("Type the 6-digit code the app shows").fill(used)
        section.get_by_role("button", name="Turn on").click()
        codes = section.locator(".recovery-codes li")
        expect(codes).to_have_count(10)
        recovery = codes.nth(0).inner_text()
        expect(section.get_by_role("status")).to_have_text("On. 10 recovery codes left.")

        # signing in now asks for the code after the password
        page.get_by_role("button", name="Sign out", exact=True).click()
        page.wait_for_url("**/signin")
        page.get_by_label("Sign-in name").fill("mom")
        page.get_by_label("Password").fill("correct horse")
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("alert")).to_contain_text("6-digit code")
        page.get_by_label("Code from your phone").fill(fresh_code(secret, after=used))
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("heading", name="Your photos")).to_be_visible()

        # a recovery code works once, from another browser
        other = browser.new_context()
        try:
            phone = other.new_page()
            phone.goto(server.url + "/signin")
            phone.get_by_label("Sign-in name").fill("mom")
            phone.get_by_label("Password").fill("correct horse")
            phone.get_by_role("button", name="Sign in").click()
            phone.get_by_label("Code from your phone").fill(recovery)
            phone.get_by_role("button", name="Sign in").click()
            expect(phone.get_by_role("heading", name="Your photos")).to_be_visible()

            # the devices list: this browser, the phone and the test's own script; sign the phone out
            page.goto(server.url + "/settings")
            devices = page.locator("#devices li")
            expect(devices).to_have_count(3)
            expect(devices.filter(has_text="This device")).to_have_count(1)
            expect(devices.filter(has_text="Chrome on Linux")).to_have_count(2)
            devices.filter(has_text="Chrome on Linux").filter(has_not_text="This device").get_by_role(
                "button", name="Sign out").click()
            expect(devices).to_have_count(2)
            phone.goto(server.url + "/")
            expect(phone).to_have_url(server.url + "/signin")
        finally:
            other.close()

        # the admin turns it off for Dad, who lost his phone
        dad = server.session("dad", "another horse")
        secret_dad = dad.post(server.url + "/api/v1/me/totp").json()["secret"]
        dad.post(server.url + "/api/v1/me/totp/confirm", json={"code": pyotp.TOTP(secret_dad).now()})
        page.goto(server.url + "/family")
        page.get_by_role("button", name="Turn off two-step sign-in for dad").click()
        expect(page.get_by_text("dad can sign in with the password alone now")).to_be_visible()
        assert server.session("dad", "another horse").get(server.url + "/api/v1/me").ok
    finally:
        context.close()
