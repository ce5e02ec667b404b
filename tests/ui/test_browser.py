"""A person's path through the page: headless Chromium uploads a photo and reads the labels off the page."""

import shutil

import pytest
from playwright.sync_api import sync_playwright

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Without these, Chromium keeps trying to reach Google's services from a machine with no network.
CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def classified_coffee(browser, app_url, coffee_jpg, height=1800):
    """A page on which a person uploaded the coffee photo and its labels have appeared."""
    page = browser.new_page(viewport={"width": 1400, "height": height})
    page.goto(app_url)
    page.locator("#photo-input input[type=file]").set_input_files(str(coffee_jpg))
    page.locator("#imagenet-labels").get_by_text("espresso").first.wait_for(timeout=60_000)
    return page


@pytest.mark.browser
def test_upload_a_photo_and_read_the_labels(browser, app_url, coffee_jpg):
    page = classified_coffee(browser, app_url, coffee_jpg)
    page.locator("#scene-labels").get_by_text("coffee shop").first.wait_for(timeout=10_000)
    assert "indoor" in page.inner_text("body")
    page.close()


@pytest.mark.browser
def test_a_bad_file_shows_an_error_and_the_page_still_works(browser, app_url, sample_photos, tmp_path):
    bad = tmp_path / "notes.txt"
    bad.write_text("not a photo\n" * 10)
    page = browser.new_page(viewport={"width": 1400, "height": 1800})
    page.goto(app_url)
    page.locator("#photo-input input[type=file]").set_input_files(str(bad))
    page.get_by_text("not an image").first.wait_for(timeout=30_000)
    page.close()


@pytest.mark.browser
def test_clicking_an_example_photo_classifies_it(browser, app_url):
    page = browser.new_page(viewport={"width": 1400, "height": 1800})
    page.goto(app_url)
    page.get_by_text("rocket.jpg").first.click()
    page.locator("#imagenet-labels").get_by_text("missile").first.wait_for(timeout=60_000)
    assert "outdoor" in page.inner_text("body")
    page.close()


@pytest.mark.browser
def test_the_models_tab_shows_the_table_and_the_plot(browser, app_url):
    page = browser.new_page(viewport={"width": 1400, "height": 1800})
    page.goto(app_url)
    page.get_by_role("tab", name="Models").click()
    page.locator("#model-table").get_by_text("efficientnet_lite0.int8_static_onnx").first.wait_for(timeout=30_000)
    page.locator("#accuracy-plot img, #accuracy-plot canvas, #accuracy-plot svg").first.wait_for(timeout=30_000)
    page.close()


@pytest.mark.browser
def test_compare_precisions_lists_every_variant(browser, app_url, coffee_jpg):
    page = classified_coffee(browser, app_url, coffee_jpg, height=2400)
    page.locator("#compare").click()
    table = page.locator("#comparison")
    table.get_by_text("efficientnet_lite0.int8_dynamic_onnx").first.wait_for(timeout=120_000)
    assert "squeezenet1.1_places365.int8_static_onnx" in table.inner_text()
    page.close()


@pytest.mark.browser
def test_the_faces_tab_finds_the_astronaut(browser, app_url):
    page = browser.new_page(viewport={"width": 1400, "height": 2400})
    page.goto(app_url)
    page.get_by_role("tab", name="Faces").click()
    page.get_by_text("astronaut.png").filter(visible=True).first.click()
    page.locator("#find-faces").click()
    page.locator("#faces-summary").get_by_text("1 face(s)").first.wait_for(timeout=60_000)
    page.locator("#face-crops img").first.wait_for(timeout=30_000)
    page.close()
