"""The browser tests' one set-up: Playwright drives Debian's chromium (headless, nothing
fetched from outside 127.0.0.1), axe-core vendored in tests/browser/ checks each page, and
screenshots go to tests/browser/artifacts/.

The `browser` fixture (tests/conftest.py) is `launched()`; `Watched` is for a page that records
console errors and requests leaving the machine, `axe_problems` for the serious and critical
axe-core violations and `looked_at` to screenshot a page and check it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
HERE = Path(__file__).resolve().parent
AXE = (HERE / "browser" / "axe.min.js").read_text(encoding="utf-8")
ARTIFACTS = HERE / "browser" / "artifacts"
WIDTHS = (1280, 360)


def launched() -> Iterator[Any]:
    """Debian's chromium, running until the generator is closed (never skipped: `make
    system` installs it)."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} missing: `make system` installs it (requirements/debian.txt)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield browser
        browser.close()


class Watched:
    """A page with its console errors and every request that left 127.0.0.1 recorded."""

    def __init__(self, browser: Any, width: int = 1280, javascript: bool = True):
        self.context = browser.new_context(viewport={"width": width, "height": 900},
                                           java_script_enabled=javascript,
                                           accept_downloads=True)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.outside: list[str] = []
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.context.route("**/*", self._only_local)

    def _only_local(self, route: Any) -> None:
        host = urlsplit(route.request.url).hostname
        if route.request.url.startswith("data:") or host == "127.0.0.1":
            route.continue_()
        else:
            self.outside.append(route.request.url)
            route.abort()

    def close(self) -> None:
        self.context.close()


def axe_problems(page: Any) -> list[str]:
    """The page's serious and critical axe-core violations, one line each."""
    page.evaluate(AXE)
    result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [f"{v['id']} ({v['impact']}): {v['help']} — "
            + "; ".join(n["html"][:120] for n in v["nodes"][:3])
            for v in result["violations"] if v["impact"] in ("serious", "critical")]


def looked_at(page: Any, name: str, problems: dict[str, list[str]],
              widths: tuple[int, ...] = WIDTHS) -> None:
    """Screenshot the page at each width (ARTIFACTS/`name`-<width>.png; first, while a live
    page still shows what it showed), never a sideways scroll on a phone; then axe-core's
    findings go into `problems[name]`. The page is left at its first width."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    first = page.viewport_size
    for width in widths:
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(ARTIFACTS / f"{name}-{width}.png"), full_page=True)
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"), \
            (name, width)
    page.set_viewport_size(first)
    if found := axe_problems(page):
        problems[name] = found
