"""The Denoise page as a photo tool, in a real browser: Stop (the page's own and
Streamlit's), the zoom's map, and a new strength previewed on the photo itself."""

import base64
import io
import time

import numpy as np
import pytest
from PIL import Image

from denoiser.service import magnify

from helpers import choose_model, choose_upload, metric_value, png_file, sample_photo, upload, wait_idle

pytestmark = pytest.mark.slow  # see pyproject.toml


def noisy_photo(seed, height, width, sigma=6):
    photo = sample_photo(seed, height=height, width=width).astype(np.float32)
    return np.clip(photo + np.random.default_rng(seed).normal(0, sigma, photo.shape), 0, 255).astype(np.uint8)


def start_a_long_run(page, tmp_path, seed):
    """Uploads a 4.3 MP photo with every default: the fast preview comes first, then the
    recommended model, whose run is under way (its Stop shown) when this returns."""
    path = png_file(tmp_path / f"long{seed}.png", noisy_photo(seed, 1800, 2400))
    choose_upload(page)
    upload(page, path)
    page.get_by_role("button", name="Stop this run").wait_for()
    page.get_by_text("Denoising… tile").first.wait_for()


def test_stop_says_where_it_stopped_keeps_the_fast_preview_and_runs_again_on_the_button(app_page, tmp_path):
    start_a_long_run(app_page, tmp_path, 21)
    app_page.get_by_role("button", name="Stop this run").click()
    warning = app_page.get_by_test_id("stAlert").filter(has_text="Stopped after")
    warning.wait_for()
    done, total = (int(n) for n in warning.inner_text().split("Stopped after ")[1].split(" tiles")[0].split(" of "))
    assert 0 <= done < total
    # The last result stays: the fast preview, with its download; the run does not start again.
    app_page.locator("#fast-cmp").wait_for()
    app_page.get_by_role("button", name="Download this fast result (PNG)").wait_for()
    app_page.wait_for_timeout(2000)
    assert app_page.get_by_text("Denoising… tile").count() == 0
    assert app_page.get_by_test_id("stMetric").filter(has_text="Strength used").count() == 0
    app_page.get_by_role("button", name="Denoise the whole photo").click()
    assert float(metric_value(app_page, "Strength used")) > 0
    assert app_page.get_by_text("Stopped after").count() == 0


def test_streamlits_own_stop_is_said_on_the_next_run_which_does_not_start_again(app_page, tmp_path):
    start_a_long_run(app_page, tmp_path, 22)
    app_page.get_by_test_id("stStatusWidget").get_by_role("button", name="Stop").click()
    app_page.get_by_test_id("stStatusWidget").wait_for(state="detached")
    # Any choice reruns the page: it says that the run stopped instead of starting it again.
    app_page.get_by_test_id("stSidebar").get_by_text("All models", exact=True).click()
    app_page.get_by_test_id("stAlert").filter(has_text="Stopped after").wait_for()
    wait_idle(app_page)
    assert app_page.get_by_text("Denoising… tile").count() == 0
    app_page.get_by_role("button", name="Denoise the whole photo").wait_for()


def zoom_before(page):
    """The zoom's noisy crop as the page shows it (uint8), once it is `size` wide."""
    source = page.locator("#zoom-cmp .cmp-before img").get_attribute("src")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(source.split(",", 1)[1]))).convert("RGB"))


def test_the_map_moves_the_zoom_with_a_click_and_with_the_arrow_keys(app_page, tmp_path):
    photo = noisy_photo(23, 900, 1200)
    choose_upload(app_page)
    upload(app_page, png_file(tmp_path / "map.png", photo))
    choose_model(app_page, "Median filter (classical)", all_models=True)
    metric_value(app_page, "Strength used")
    area = app_page.locator(".zmap")
    area.scroll_into_view_if_needed()
    # At first the 128-pixel window sits at the photo's centre, shown at 2:1.
    assert np.array_equal(zoom_before(app_page), magnify(photo[386:514, 536:664], 2))
    # One arrow key moves it right by half a window: centre (664, 450).
    area.focus()
    app_page.keyboard.press("ArrowRight")
    wait_idle(app_page)
    expected = magnify(photo[386:514, 600:728], 2)
    for _ in range(20):
        if np.array_equal(zoom_before(app_page), expected):
            break
        wait_idle(app_page)
    assert np.array_equal(zoom_before(app_page), expected)
    # A click at a quarter of the map's width and height centres it there, near (300, 225):
    # the map draws the window where the zoom takes its pixels from.
    box = area.bounding_box()
    area.click(position={"x": box["width"] / 4, "y": box["height"] / 4})
    fx, fy = (float(f) for f in area.get_attribute("data-center").split(","))
    assert fx == pytest.approx(0.25, abs=0.01) and fy == pytest.approx(0.25, abs=0.01)
    cx, cy = round(fx * 1200), round(fy * 900)
    expected = magnify(photo[cy - 64 : cy + 64, cx - 64 : cx + 64], 2)
    for _ in range(20):
        wait_idle(app_page)
        if np.array_equal(zoom_before(app_page), expected):
            break
    assert np.array_equal(zoom_before(app_page), expected)


def test_a_new_strength_previews_the_photo_and_the_zoom_before_the_whole_photo(app_page, tmp_path):
    choose_upload(app_page)
    upload(app_page, png_file(tmp_path / "strength.png", noisy_photo(6, 900, 1200)))
    metric_value(app_page, "Strength used")
    wait_idle(app_page)
    slider = app_page.get_by_test_id("stSidebar").get_by_role("slider").first
    slider.focus()
    started = time.monotonic()
    slider.press("ArrowRight")
    app_page.locator("#preview-cmp").filter(has_text="strength").wait_for()
    app_page.locator("#zoom-cmp").filter(has_text="strength").wait_for()
    seconds = time.monotonic() - started
    # About a second on this machine: a figure for the docs, not a condition, so that a
    # busy machine does not fail a correct change.
    print(f"\nthe photo and the zoom at a new strength after {seconds:.2f} s")
    # The whole photo's numbers and downloads stay meanwhile, said to be at the last strength
    # (drawn after the previews, as the rerun goes on).
    app_page.get_by_text("The whole photo, at strength").first.wait_for()
    app_page.get_by_role("button", name="Download PNG (lossless, full resolution)").wait_for()
