"""Make docs/screenshot.png: the app on the coffee sample photo, in headless Chromium.

    python scripts/screenshot.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.ui.test_browser import CHROMIUM, CHROMIUM_ARGS  # noqa: E402

import app  # noqa: E402
from pipelines.common.calibration import sample_photo_paths  # noqa: E402


def main() -> None:
    demo = app.build_app()
    demo.launch(server_name="127.0.0.1", server_port=7869, prevent_thread_lock=True, quiet=True)
    photo = next(p for p in sample_photo_paths() if p.stem == "coffee")
    try:
        with sync_playwright() as playwright, tempfile.TemporaryDirectory():
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1440, "height": 1500})
            page.goto("http://127.0.0.1:7869/")
            page.locator("#photo-input input[type=file]").set_input_files(str(photo))
            page.locator("#imagenet-labels").get_by_text("espresso").first.wait_for(timeout=60_000)
            page.wait_for_timeout(1000)
            page.screenshot(path=str(ROOT / "docs" / "screenshot.png"), full_page=False)
            browser.close()
    finally:
        demo.close()


if __name__ == "__main__":
    main()
