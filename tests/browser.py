"""Debian's Chromium, driven by Playwright, the way every browser test starts it."""

CHROMIUM = "/usr/bin/chromium"  # installed by `make test`; Playwright never downloads its own
# Headless, as root, on a machine with no internet: no sandbox, no GPU, no background calls home.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def launch(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
