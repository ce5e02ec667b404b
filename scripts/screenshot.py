"""Make the README's screenshots in headless Chromium: each tab at 1280x800 and the Photo tab on a phone
(390x844), on scikit-image's sample photos (never personal photos).

    MVL_MODEL_DIRS=../shared/models python scripts/screenshot.py
"""

from __future__ import annotations

import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import app  # noqa: E402
from pipelines.common.calibration import sample_photo_paths  # noqa: E402
from tests.ui.test_browser import CHROMIUM, CHROMIUM_ARGS, DESKTOP, PHONE  # noqa: E402
from ui.server import serve  # noqa: E402

DOCS = ROOT / "docs"
PORT = 7869


def shoot(page, name: str) -> None:
    page.wait_for_timeout(800)
    page.screenshot(path=str(DOCS / name), full_page=False)
    print(f"docs/{name}")


def main() -> None:
    samples = {p.stem: p for p in sample_photo_paths()}
    demo = app.build_app()
    url = serve(demo, port=PORT, block=False, quiet=True)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            for viewport, name in ((DESKTOP, "photo.png"), (PHONE, "photo-phone.png")):
                page = browser.new_page(viewport=viewport)
                page.goto(url)
                page.locator("#photo-input input[type=file]").set_input_files(str(samples["coffee"]))
                page.locator("#photo-summary").get_by_text("espresso").first.wait_for(timeout=60_000)
                if viewport is PHONE:
                    page.locator("#photo-input").scroll_into_view_if_needed()
                    page.evaluate("window.scrollBy(0, document.querySelector('#photo-input').getBoundingClientRect().top - 8)")
                shoot(page, name)
                page.close()
            page = browser.new_page(viewport=DESKTOP)
            page.goto(url)
            page.get_by_role("tab", name="Faces").click()
            page.locator("#faces-input input[type=file]").set_input_files(str(samples["astronaut"]))
            page.locator("#faces-summary").get_by_text("1 face(s)").wait_for(timeout=60_000)
            shoot(page, "faces.png")
            page.get_by_role("tab", name="Album").click()
            page.locator("#album-files input[type=file]").first.set_input_files(
                [str(samples[s]) for s in ("chelsea", "coffee", "astronaut", "rocket", "motorcycle_left",
                                           "motorcycle_right")])
            page.locator("#album-run").click()
            page.locator("#album-summary").get_by_text("6 photos").wait_for(timeout=180_000)
            page.evaluate("window.scrollTo(0, document.querySelector('#album-run').getBoundingClientRect().top "
                          "+ window.scrollY - 8)")
            shoot(page, "album.png")
            page.evaluate("window.scrollTo(0, 0)")
            page.get_by_role("tab", name="Models").click()
            page.locator("#accuracy-plot g.mark-symbol.role-mark path").first.wait_for(timeout=30_000)
            shoot(page, "models.png")
            browser.close()
    finally:
        demo.close()


if __name__ == "__main__":
    main()
