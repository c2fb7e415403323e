"""Real-browser fixtures: Playwright for Python driving the system's Chromium.

Playwright launches the distribution's Chromium (``CHROMIUM_PATH``, default ``/usr/bin/chromium``;
``make browser`` installs it), so no browser download is needed. Pages are served by pytest-django's
``live_server`` against the test database. Screenshots go to ``SCREENSHOT_DIR`` when set (to look at
them), else to the test's temporary directory.
"""

import os
from pathlib import Path

import pytest

CHROMIUM_PATH = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
DESKTOP = {"width": 1400, "height": 900}
PHONE = {"width": 390, "height": 844}


# Per module, not per session: while Playwright runs, its event loop is this thread's running
# loop, and a later test in the same process calling asyncio.run() would fail.
@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM_PATH).exists():
        pytest.fail(f"No Chromium at {CHROMIUM_PATH}: run `make browser` (or set CHROMIUM_PATH).")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop on this thread; the test's own ORM calls are still
    # synchronous, which Django's async guard cannot tell.
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM_PATH,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield chromium
        chromium.close()


@pytest.fixture
def open_page(browser):
    """``open_page(viewport=DESKTOP)``: a page in a fresh context (own cookies), closed after."""
    contexts = []

    def open_(viewport: dict = DESKTOP):
        context = browser.new_context(viewport=viewport)
        contexts.append(context)
        return context.new_page()

    yield open_
    for context in contexts:
        context.close()


@pytest.fixture
def screenshot(tmp_path):
    """``screenshot(page, name)`` saves a full-page PNG and returns its path."""
    directory = Path(os.environ.get("SCREENSHOT_DIR") or tmp_path)
    directory.mkdir(parents=True, exist_ok=True)

    def take(page, name: str) -> Path:
        path = directory / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


def horizontal_overflow(page) -> int:
    """How many CSS pixels the page is wider than its viewport (0 when nothing scrolls sideways)."""
    return page.evaluate("document.documentElement.scrollWidth - window.innerWidth")


def csp_violations(page) -> list[str]:
    """What the Content-Security-Policy refuses ``page`` from now on (a stylesheet, a script), as
    the console reports it; the list fills as they come."""
    refused: list[str] = []

    def note(message) -> None:
        if message.type == "error" and "Content Security Policy" in message.text:
            refused.append(message.text)

    page.on("console", note)
    return refused
