"""The app under load: 8 browser sessions denoise different images at once, each
gets its own correct result, and the server's memory stays bounded; then one
12-megapixel photo, the Streamlit Community Cloud case."""

import asyncio
import re
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from playwright.async_api import async_playwright

from denoiser.catalog import default_for, load_runtime
from denoiser.service import run_demo

from helpers import CHROMIUM, CHROMIUM_ARGS, DEMO, TIMEOUT, png_file, sample_photo

pytestmark = pytest.mark.slow  # see pyproject.toml

SESSIONS = 8
MEMORY_LIMIT_MB = 1500  # eight sessions at once
# One photo on a server of its own: 12 megapixels, and the app's 50-megapixel limit.
# An upload opens as an already noisy photo: the app keeps the photo (decoded once, for
# every rerun) and denoises into an image beside it, one 12 MP float image (144 MB) more
# than the demo, which denoises its own noisy copy in place. Measured here: 980 MB; with
# the fast preview first, 1,039 to 1,134 MB over seven runs on one machine, the code
# before and after session 19 alike (glibc's arenas keep a varying share of what was freed).
MEMORY_12MP_MB = 1200
MEMORY_50MP_MB = 2500


async def one_session(browser, url, path):
    context = await browser.new_context(viewport={"width": 1400, "height": 1000})
    page = await context.new_page()
    page.set_default_timeout(TIMEOUT)
    await page.goto(url)
    await page.get_by_text("Upload", exact=True).first.click()
    await page.locator('input[type="file"]').first.set_input_files(str(path))
    await page.get_by_text(f"{path.name}:").first.wait_for()
    # An upload opens as an already noisy photo; the demo's PSNR tells the sessions' results apart.
    await page.get_by_test_id("stSidebar").get_by_text(DEMO, exact=True).click()
    metric = page.get_by_test_id("stMetric").filter(has_text="PSNR denoised").first
    value = await metric.get_by_test_id("stMetricValue").inner_text()
    await context.close()
    return value


async def run_sessions(url, paths):
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            return await asyncio.gather(*(one_session(browser, url, path) for path in paths))
        finally:
            await browser.close()


def in_own_loop(coroutine):
    """pytest-playwright's sync API holds an event loop in this thread; use another."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def expected_psnr(image):
    runtime = load_runtime(default_for('gaussian'))
    result = run_demo(image.astype(np.float32) / 255.0, runtime, kind="gaussian", level=25, seed=0)
    return f"{result.psnr_denoised:.2f} dB"


def test_eight_sessions_at_once_each_get_their_own_result(server, tmp_path):
    images = [sample_photo(100 + i, height=360, width=480) for i in range(SESSIONS)]
    paths = [png_file(tmp_path / f"session{i}.png", image) for i, image in enumerate(images)]
    started = time.monotonic()
    shown = in_own_loop(run_sessions(server.url, paths))
    wall = time.monotonic() - started
    peak = server.peak_rss_mb()
    print(f"\nload: {SESSIONS} sessions, model {default_for('gaussian')}, wall {wall:.1f} s, server peak RSS {peak:.0f} MB")
    expected = [expected_psnr(image) for image in images]
    assert len(set(expected)) >= SESSIONS // 2  # the sessions' results really differ
    assert shown == expected
    assert peak < MEMORY_LIMIT_MB


async def timed_photo(browser, url, path, timeout):
    """(seconds from the upload to the numbers shown, the model's own seconds as the
    page states them, the fast preview's own seconds as its caption states them) for
    one photo."""
    context = await browser.new_context(viewport={"width": 1400, "height": 1000})
    page = await context.new_page()
    page.set_default_timeout(timeout)
    await page.goto(url)
    await page.get_by_text("Upload", exact=True).first.click()
    started = time.monotonic()
    await page.locator('input[type="file"]').first.set_input_files(str(path))
    caption = await page.get_by_text("A fast preview (").first.inner_text()
    fast = float(re.search(r"A fast preview \(.*?, ([\d.]+) s\)", caption).group(1))
    await page.get_by_text(f"{path.name}:").first.wait_for()
    seconds = time.monotonic() - started
    metric = page.get_by_test_id("stMetric").filter(has_text="Time").first
    model = float((await metric.get_by_test_id("stMetricValue").inner_text()).split()[0])
    await context.close()
    return seconds, model, fast


async def run_timed(url, path, timeout=TIMEOUT):
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            return await timed_photo(browser, url, path, timeout)
        finally:
            await browser.close()


def test_twelve_megapixel_photo_within_cloud_memory(fresh_server, tmp_path):
    path = png_file(tmp_path / "twelve.png", sample_photo(7, height=3000, width=4000))
    seconds, model, fast = in_own_loop(run_timed(fresh_server.url, path))
    peak = fresh_server.peak_rss_mb()
    print(f"\n12 MP: model {default_for('real_photo')}, {seconds:.1f} s from the upload to the numbers shown, "
          f"the model's own {model:.1f} s and the fast preview's {fast:.1f} s (ratio {seconds / (model + fast):.2f}), "
          f"server peak RSS {peak:.0f} MB")
    # What the page adds to the two models' own times: reading the photo, estimating its
    # noise, drawing the views. It was once bounded against the chosen model's time alone
    # (1.65), which failed on a machine where int8 ran 2.5 times faster than where the
    # limit was set (1.69 to 1.79 here, before and after session 19). Against both
    # models' times: 1.21 and 1.28 here (2-core AVX-512 VNNI, two runs). The margin
    # keeps a loaded machine from failing the run.
    assert seconds / (model + fast) < 1.45
    assert peak <= MEMORY_12MP_MB


async def first_waits(url, path, viewport):
    """(seconds to the first picture, to the first download, to the chosen model's result)
    for `path` uploaded with every default, then whether the photo is still there after
    a visit to About."""
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = await (await browser.new_context(viewport=viewport)).new_page()
        page.set_default_timeout(TIMEOUT)
        await page.goto(url)
        await page.get_by_text("Upload", exact=True).first.click()
        started = time.monotonic()
        await page.locator('input[type="file"]').first.set_input_files(str(path))
        await page.get_by_test_id("stImage").first.wait_for()
        picture = time.monotonic() - started
        await page.get_by_role("button", name="Download this fast result (PNG)").wait_for()
        download = time.monotonic() - started
        await page.get_by_text(f"{path.name}:").first.wait_for()
        result = time.monotonic() - started
        for target, landmark in (("About", "Details and provenance"), ("Denoise", None)):
            # On a phone the sidebar is closed: its » opens it, as a person does.
            if not await page.get_by_test_id("stSidebarNav").is_visible():
                await page.get_by_test_id("stExpandSidebarButton").click()
            await page.get_by_test_id("stSidebarNav").get_by_text(target).click()
            if landmark:
                await page.get_by_text(landmark).first.wait_for()
        await page.get_by_text(f"Still working on {path.name}").first.wait_for()
        await browser.close()
        return picture, download, result


@pytest.mark.parametrize("viewport", [{"width": 1440, "height": 900}, {"width": 390, "height": 844}])
def test_a_camera_photo_shows_at_once_and_its_first_download_does_not_wait_for_the_model(fresh_server, tmp_path,
                                                                                        viewport):
    """An 8.7 MP JPEG with every default: the photo, then the fast model's result and its
    download, then the recommended model's; the photo is still there after About."""
    from PIL import Image

    path = tmp_path / "camera.jpg"
    Image.fromarray(sample_photo(12, height=2416, width=3612)).save(path, quality=92)
    picture, download, result = in_own_loop(first_waits(fresh_server.url, path, viewport))
    peak = fresh_server.peak_rss_mb()
    print(f"\n8.7 MP at {viewport['width']}x{viewport['height']}: the picture after {picture:.1f} s, the first "
          f"download after {download:.1f} s, {default_for('real_photo')}'s result after {result:.1f} s, "
          f"server peak RSS {peak:.0f} MB")
    # The order is the promise; the seconds (5 s and 20 s targets here) are figures for
    # docs/speed-and-memory.md, which a busy machine must not turn into a failure.
    assert picture < download < result
    assert peak <= MEMORY_LIMIT_MB


def test_a_24_megapixel_photo_stays_within_a_small_cloud_host(fresh_server, tmp_path):
    """The default model on a 24 MP photo: under the 1.5 GB that the smallest Streamlit
    Community Cloud hosts leave."""
    path = png_file(tmp_path / "twentyfour.png", sample_photo(8, height=4000, width=6000))
    seconds, model, _ = in_own_loop(run_timed(fresh_server.url, path))
    peak = fresh_server.peak_rss_mb()
    print(f"\n24 MP: model {default_for('real_photo')}, {seconds:.1f} s from the upload to the numbers shown, "
          f"the model's own {model:.1f} s, server peak RSS {peak:.0f} MB")
    assert peak <= MEMORY_LIMIT_MB


@pytest.mark.timeout(1800)
def test_a_photo_at_the_apps_pixel_limit_completes_within_its_memory(fresh_server, tmp_path):
    from PIL import Image

    height, width = 5770, 8660  # 49.97 megapixels
    path = tmp_path / "fifty.jpg"
    Image.fromarray(sample_photo(11, height=height, width=width)).save(path, quality=95)
    seconds, model, _ = in_own_loop(run_timed(fresh_server.url, path, timeout=1_500_000))
    peak = fresh_server.peak_rss_mb()
    print(f"\n50 MP: model {default_for('real_photo')}, {seconds:.1f} s from the upload to the numbers shown, "
          f"the model's own {model:.1f} s, server peak RSS {peak:.0f} MB")
    assert peak <= MEMORY_50MP_MB
