"""Page actions shared by the browser tests."""

import io
import os

import numpy as np
from PIL import Image

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]
TIMEOUT = int(os.environ.get("BROWSER_TIMEOUT_MS", 240_000))


def png_file(path, array):
    Image.fromarray(array).save(path)
    return path


def sample_photo(seed, height=240, width=320):
    """A photo-like image: smooth shapes with texture, different for each seed."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    channels = [0.5 + 0.3 * np.sin(x / rng.uniform(8, 30) + rng.uniform(0, 6)) * np.cos(y / rng.uniform(8, 30))
                for _ in range(3)]
    return np.rint(np.clip(np.stack(channels, axis=-1), 0, 1) * 255).astype(np.uint8)


def metric_value(page, label):
    metric = page.get_by_test_id("stMetric").filter(has_text=label).first
    metric.wait_for(timeout=TIMEOUT)
    return metric.get_by_test_id("stMetricValue").inner_text()


def choose_upload(page):
    page.get_by_text("Upload", exact=True).first.click()
    page.locator('input[type="file"]').first.wait_for(state="attached", timeout=TIMEOUT)


DEMO = "Demo: add noise to a clean image"


def choose_demo(page):
    """An upload opens as an already noisy photo; this picks the demo on it."""
    page.get_by_test_id("stSidebar").get_by_text(DEMO, exact=True).click()
    wait_idle(page)


def upload(page, path):
    page.locator('input[type="file"]').first.set_input_files(str(path))


def choose_model(page, label, *, all_models=False):
    """Opens the model list and picks `label`; a rerun that closes the list is retried.
    With `all_models`, the "All models" list of a photo that is already noisy is opened first."""
    if all_models:
        page.get_by_test_id("stSidebar").get_by_text("All models", exact=True).click()
        wait_idle(page)
    selectbox = page.get_by_test_id("stSidebar").get_by_test_id("stSelectbox").filter(has_text="Model")
    option = page.locator('[role="option"]').filter(has_text=label).first
    for _ in range(10):
        wait_idle(page)
        selectbox.click()
        # The list shows its first options only: typing narrows it to the one wanted.
        page.keyboard.type(label.split(" (")[0])
        try:
            option.click(timeout=5000)
            break
        except Exception:
            page.keyboard.press("Escape")
    else:
        raise AssertionError(f"could not pick {label!r} from the model list")
    wait_idle(page)


def wait_idle(page):
    """Until the script run ends (the status widget goes away)."""
    page.wait_for_timeout(500)
    page.get_by_test_id("stStatusWidget").wait_for(state="detached", timeout=TIMEOUT)


def decode(data):
    return Image.open(io.BytesIO(data))
