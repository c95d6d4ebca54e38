"""The Streamlit app through streamlit.testing: every page, the numbers shown,
and the errors for bad files."""

import io
import os

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from denoiser import metrics, service
from denoiser.catalog import available_models, load_runtime, read_manifest, short_title
from denoiser.io import load_image, to_integer
from pages.common import result_cache

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TIMEOUT = 300


def png(array):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def app(monkeypatch):
    monkeypatch.chdir(ROOT)
    at = AppTest.from_file(os.path.join(ROOT, "app.py"), default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, at.exception
    return at


def fast_model(at):
    """The median filter keeps the app tests quick; models are tested elsewhere."""
    at.selectbox(key="model_gaussian").set_value("median")
    at.run()
    assert not at.exception, at.exception


def pick_photo_model(at, name):
    """Picks `name` for a photo that is already noisy, under "All models" where it is not a short-list choice."""
    if name not in at.selectbox(key="model_real").options:
        at.toggle(key="model_real_all").set_value(True)
        at.run()
    at.selectbox(key="model_real").set_value(name)
    at.run()
    assert not at.exception, at.exception


def metric(at, label):
    return next(m for m in at.metric if m.label == label)


def test_denoise_page_shows_the_engines_numbers(app):
    fast_model(app)
    clean = service.load_sample("Astronaut").pixels
    expected = service.run_demo(clean, load_runtime("median"), kind="gaussian", level=25, seed=0)
    assert metric(app, "PSNR denoised").value == f"{expected.psnr_denoised:.2f} dB"
    assert metric(app, "PSNR noisy").value == f"{expected.psnr_noisy:.2f} dB"
    assert metric(app, "SSIM denoised").value == f"{expected.ssim_denoised:.4f}"
    assert expected.psnr_denoised > expected.psnr_noisy
    assert not app.error


def test_a_demo_run_holds_little_more_than_one_float_image_beside_the_clean_one():
    import tracemalloc

    clean = np.ascontiguousarray(np.tile(service.load_sample("Astronaut").pixels, (8, 1, 1))[:4000])
    runtime = load_runtime("median")
    tracemalloc.start()
    try:
        result = service.run_demo(clean, runtime, kind="gaussian", level=25, seed=0)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # The noisy image is denoised in place, and each float image is dropped once its
    # integer form exists; keeping noisy, denoised and a 16-bit copy took 3.8 times.
    assert peak < 2.0 * clean.nbytes
    assert result.denoised16 is None and result.psnr_denoised > result.psnr_noisy
    # The numbers are those of the float images.
    noisy = service.make_noisy(clean, "gaussian", 25, 0)
    assert result.psnr_noisy == metrics.psnr(clean, noisy)


def test_downloads_keep_the_photos_bit_depth():
    photo = np.random.default_rng(1).random((40, 50, 3)).astype(np.float32)
    for depth in (8, 16):
        result = service.run_noisy_photo(photo, load_runtime("median"), level=5, bit_depth=depth)
        assert (result.denoised16 is None) == (depth == 8)
        download = to_integer(result.denoised_float, depth)
        np.testing.assert_array_equal(download, result.denoised if depth == 8 else result.denoised16)


def test_a_run_reports_each_phase_as_it_begins_and_its_time_after(app):
    clean = service.load_sample("Astronaut").pixels
    heard = []
    result = service.run_demo(clean, load_runtime("median"), kind="gaussian", level=25, seed=0, phase=heard.append)
    assert heard == list(result.phases) == ["adding noise", "denoising", "preparing the images", "metrics"]
    assert all(seconds >= 0 for seconds in result.phases.values())
    assert result.seconds == result.phases["denoising"]
    fast_model(app)
    caption = next(c.value for c in app.caption if "Time:" in c.value)
    assert all(name in caption for name in heard)


def test_moving_the_noise_slider_updates_and_moving_back_reuses(app):
    fast_model(app)
    first, first_time = metric(app, "PSNR noisy").value, metric(app, "Time").value
    app.slider(key="noise_level").set_value(50)
    app.run()
    assert metric(app, "PSNR noisy").value != first
    app.slider(key="noise_level").set_value(25)
    app.run()
    assert metric(app, "PSNR noisy").value == first
    # The same run time shows that the cached result came back, not a new run.
    assert metric(app, "Time").value == first_time


def noisy_mode(at):
    at.radio(key="mode").set_value("My photo is already noisy")
    at.run()
    assert not at.exception, at.exception


def test_already_noisy_mode_starts_with_the_real_photo_model_and_its_estimated_strength(app):
    noisy_mode(app)
    # The shipped manifest's real-photo default, and the reason it gives.
    assert app.selectbox(key="model_real").value == "dncnn_real_int8"
    assert any("Why this model: trained on real camera noise" in caption.value
               for caption in app.sidebar.caption)
    pixels = service.load_sample("Astronaut").pixels
    estimate = service.photo_level(pixels)
    assert metric(app, "Estimated noise level").value == f"{estimate:.1f}"
    assert any("No PSNR or SSIM" in c.value for c in app.caption)
    assert all(m.label != "PSNR denoised" and "PSNR" not in m.label for m in app.metric)
    if load_runtime(app.selectbox(key="model_real").value).level_map:
        strength = next(s for s in app.slider if s.key.startswith("strength_"))
        assert strength.value == pytest.approx(round(estimate, 1))
        assert metric(app, "Strength used").value == f"{strength.value:.1f}"


@pytest.mark.parametrize("name", ["median", "dncnn_real_fp16"])
def test_the_preview_window_shows_what_the_whole_photo_shows_there(name):
    photo = service.load_sample("Astronaut").pixels[100:300, 50:350]
    runtime = load_runtime(name)
    noisy, preview = service.preview_window(photo, runtime, level=12.0, center=(290, 20), size=64)
    whole = to_integer(service.denoise(photo, runtime, level=12.0))
    assert noisy.shape == preview.shape == (64, 64, 3)
    # The window is clamped inside the photo: columns 236-299, rows 0-63.
    assert np.array_equal(noisy, to_integer(photo[:64, 236:300]))
    assert np.abs(preview.astype(int) - whole[:64, 236:300].astype(int)).max() <= 1


def test_the_photo_preview_is_the_photo_downscaled_denoised_at_the_strength_its_noise_has_there(monkeypatch):
    flat = np.full((400, 600, 3), 0.5, np.float32)
    photo = flat + np.random.default_rng(5).normal(0, 10 / 255, flat.shape).astype(np.float32)
    estimate = service.photo_level(photo)
    levels = []
    original = service.denoise
    monkeypatch.setattr(service, "denoise", lambda image, runtime, **k: levels.append(k["level"]) or original(
        image, runtime, **k))
    runtime = load_runtime("median")
    noisy, denoised = service.preview_overview(photo, runtime, level=8.0, estimate=estimate, max_side=300)
    # Area averaging over 2x2 pixels halves white noise: strength 8 is strength 4 at half the size.
    assert noisy.shape == denoised.shape == (200, 300, 3)
    assert levels[0] == pytest.approx(4.0, abs=0.4)
    assert np.array_equal(noisy, to_integer(service.overview(photo, 300)[0]))
    # A photo already within the size is denoised as it is, at the strength given.
    levels.clear()
    noisy, denoised = service.preview_overview(photo, runtime, level=8.0, estimate=estimate, max_side=600)
    assert levels == [8.0] and np.array_equal(denoised, to_integer(original(photo, runtime, level=8.0)))


def test_a_new_strength_previews_the_photo_and_the_zoom_then_the_whole_photo_on_the_button(app, monkeypatch):
    noisy_mode(app)
    pick_photo_model(app, "median")
    strength = next(s for s in app.slider if s.key.startswith("strength_median"))
    before = app.session_state[strength.key]
    whole_runs = []
    original = service.run_noisy_photo
    monkeypatch.setattr(service, "run_noisy_photo", lambda *a, **k: whole_runs.append(k["level"]) or original(*a, **k))
    strength.set_value(20.0)
    app.run()
    assert not app.exception, app.exception
    # Only the previews ran; the whole photo's numbers and downloads stay, said to be at the old strength.
    assert whole_runs == [] and before != 20.0
    assert any("the preview and the zoom below show it" in message.value and f"still at {before:.1f}" in message.value
               for message in app.info)
    assert [header.value for header in app.subheader][:2] == ["Preview at strength 20.0", "Zoom at strength 20.0"]
    assert metric(app, "Strength used").value == f"{before:.1f}"
    assert any(header.value == f"The whole photo, at strength {before:.1f}" for header in app.subheader)
    assert app.get("download_button")
    app.button(key="denoise_whole").click()
    app.run()
    assert not app.exception, app.exception
    assert whole_runs == [20.0]
    assert metric(app, "Strength used").value == "20.0"
    # No note of the old strength survives the run.
    assert not any("still at" in message.value for message in app.info)
    assert app.get("download_button")


def test_best_quality_averages_eight_orientations_as_the_engine_does(app, monkeypatch):
    from denoiser import engine

    calls = []
    original = engine.ensemble_denoise
    monkeypatch.setattr(engine, "ensemble_denoise", lambda *a, **k: calls.append(k) or original(*a, **k))
    fast_model(app)
    app.checkbox(key="ensemble").check()
    app.run()
    assert not app.exception, app.exception
    assert len(calls) == 1
    clean = service.load_sample("Astronaut").pixels
    expected = service.run_demo(clean, load_runtime("median"), kind="gaussian", level=25, seed=0, ensemble=True)
    assert metric(app, "PSNR denoised").value == f"{expected.psnr_denoised:.2f} dB"


def test_camera_noise_in_demo_mode_opens_on_the_real_photo_model(app):
    fast_model(app)
    app.selectbox(key="noise_kind").set_value("camera")
    app.run()
    assert not app.exception, app.exception
    assert app.selectbox(key="model_camera").value == "dncnn_real_int8"
    assert any("the real-photo model" in caption.value for caption in app.sidebar.caption)
    app.selectbox(key="model_camera").set_value("median")
    app.run()
    clean = service.load_sample("Astronaut").pixels
    expected = service.run_demo(clean, load_runtime("median"), kind="camera", level=16, seed=0)
    assert metric(app, "PSNR noisy").value == f"{expected.psnr_noisy:.2f} dB"


def test_each_noise_type_opens_on_its_model_and_keeps_a_choice_made_by_hand(app):
    fast_model(app)
    app.selectbox(key="noise_kind").set_value("salt_and_pepper")
    app.run()
    assert not app.exception, app.exception
    assert app.selectbox(key="model_salt_and_pepper").value == "dncnn_mixed_int8"
    app.selectbox(key="noise_kind").set_value("gaussian")
    app.run()
    assert app.selectbox(key="model_gaussian").value == "median"
    assert not any("Picked for this noise type" in caption.value for caption in app.sidebar.caption)


def upload(at, name, data):
    at.radio(key="input_source").set_value("Upload")
    at.run()
    at.file_uploader[0].set_value((name, data, "image/png"))
    at.run()
    assert not at.exception, at.exception


def test_the_photo_and_every_choice_survive_a_visit_to_another_page(app):
    photo = np.random.default_rng(3).integers(0, 256, (40, 60, 3), dtype=np.uint8)
    upload(app, "mine.png", png(photo))
    pick_photo_model(app, "median")
    app.slider(key=next(s.key for s in app.slider if s.key.startswith("strength_median_"))).set_value(7.0)
    app.run()
    app.button(key="denoise_whole").click()
    app.run()
    assert metric(app, "Strength used").value == "7.0"
    app.switch_page("pages/about.py")
    app.run()
    assert not app.exception, app.exception
    app.switch_page("pages/denoise.py")
    app.run()
    assert not app.exception, app.exception
    assert app.radio(key="input_source").value == "Upload"
    assert app.selectbox(key="model_real").value == "median"
    assert any("Still working on **mine.png**" in caption.value for caption in app.caption)
    assert metric(app, "Strength used").value == "7.0"


def test_the_same_photo_uploaded_again_opens_fresh(app):
    ramp = np.add.outer(np.arange(64), np.arange(96))[..., None].repeat(3, axis=2) + 40.0
    photo = np.clip(ramp + np.random.default_rng(4).normal(0, 6, ramp.shape), 0, 255).astype(np.uint8)
    upload(app, "mine.png", png(photo))
    pick_photo_model(app, "median")
    strength = next(s.key for s in app.slider if s.key.startswith("strength_median_"))
    app.slider(key=strength).set_value(7.0)
    app.run()
    app.radio(key="upload_mode").set_value("Demo: add noise to a clean image")
    app.run()
    app.file_uploader[0].set_value(("mine.png", png(photo), "image/png"))
    app.run()
    assert not app.exception, app.exception
    # A first upload's mode and estimated strength, with no preview-only state left over.
    assert app.radio(key="upload_mode").value == "My photo is already noisy"
    estimate = service.photo_level(service.check_picture(load_image(png(photo))).pixels)
    assert metric(app, "Strength used").value == f"{estimate:.1f}"
    assert not any("the preview and the zoom below show it" in message.value for message in app.info)
    assert not any(header.value.startswith("Preview at strength") for header in app.subheader)


@pytest.mark.parametrize("name,data,message", [
    ("broken.png", b"\x89PNG\r\n\x1a\n this is broken", "Cannot use broken.png"),
    ("notes.png", b"just some text", "not an image"),
    ("tiny.png", png(np.zeros((1, 1, 3), np.uint8)), "at least 8 pixels"),
])
def test_bad_uploads_get_a_clear_error_and_the_next_upload_works(app, name, data, message):
    fast_model(app)
    upload(app, name, data)
    assert app.error and message in app.error[0].value
    good = np.random.default_rng(0).integers(0, 256, (40, 60, 3), dtype=np.uint8)
    upload(app, "good.png", png(good))
    assert not app.error
    assert float(metric(app, "Estimated noise level").value) > 0


@pytest.mark.parametrize("limit, message", [
    ("5000", "100x100 is 10,000 pixels, over the limit of 5,000 pixels"),
    ("abc", "DENOISER_MAX_PIXELS must be a whole number of pixels"),
])
def test_upload_over_the_pixel_limit_or_a_bad_limit_is_said(monkeypatch, limit, message):
    monkeypatch.setenv("DENOISER_MAX_PIXELS", limit)
    monkeypatch.chdir(ROOT)
    at = AppTest.from_file(os.path.join(ROOT, "app.py"), default_timeout=TIMEOUT)
    at.run()
    upload(at, "big.png", png(np.zeros((100, 100, 3), np.uint8)))
    assert not at.exception, at.exception
    assert at.error and message in at.error[0].value


def test_an_upload_starts_as_an_already_noisy_photo_and_is_never_called_clean(app):
    photo = np.random.default_rng(1).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    upload(app, "mine.png", png(photo))
    assert app.radio(key="upload_mode").value == "My photo is already noisy"
    assert not any(m.label.startswith("PSNR") for m in app.metric)
    captions = [caption for image in app.get("image") for caption in image.captions]
    assert "noisy" in captions and not any("clean" in caption for caption in captions)
    # The demo runs on an upload only when picked, and says what it does to the photo.
    app.radio(key="upload_mode").set_value("Demo: add noise to a clean image")
    app.run()
    assert metric(app, "PSNR denoised").value.endswith("dB")
    assert any("it is taken as clean" in caption.value for caption in app.caption)
    # Back to the samples: they still open in the demo.
    app.radio(key="input_source").set_value("Sample")
    app.run()
    assert app.radio(key="mode").value == "Demo: add noise to a clean image"


@pytest.mark.parametrize("side", [8, 12])
def test_a_tiny_upload_in_already_noisy_mode_is_denoised(app, side):
    noisy_mode(app)
    tiny = np.random.default_rng(0).integers(0, 256, (side, side, 3), dtype=np.uint8)
    upload(app, "tiny.png", png(tiny))
    assert not app.error and not app.exception
    assert float(metric(app, "Estimated noise level").value) > 0


def test_gray_upload_is_denoised(app):
    fast_model(app)
    # A gradient with noise of std 6: a clean one reads 0, as a clean photo should.
    grain = np.random.default_rng(0).normal(0, 6, (48, 64))
    gray = np.clip(np.add.outer(np.arange(48), np.arange(64)) * 2 + grain, 0, 255).astype(np.uint8)
    upload(app, "gray.png", png(gray))
    assert not app.error
    assert float(metric(app, "Estimated noise level").value) > 3


@pytest.mark.slow
def test_the_gray_sample_with_the_default_model_goes_to_its_gray_counterpart(app):
    # The app's default for added noise is the full-integer colour DnCNN; its manifest
    # entry names the dynamic-range gray DnCNN, which denoises the gray sample.
    assert app.selectbox(key="model_gaussian").value == "dncnn_color_int8"
    app.selectbox(key="input_sample").set_value("Camera (gray)")
    app.run(timeout=TIMEOUT)
    assert not app.exception, app.exception
    assert any("DnCNN gray, blind (LiteRT int8 dynamic range)" in message.value for message in app.info)
    assert not app.warning
    # A gray DnCNN takes this sample at sigma 25 from 20.2 dB to about 29 dB; the colour
    # model on three equal channels reached about 20.4.
    assert float(metric(app, "PSNR denoised").value.removesuffix(" dB")) >= 27.0


@pytest.mark.slow
def test_compare_page_runs_every_chosen_model(app):
    app.switch_page("pages/compare.py")
    app.run()
    app.multiselect(key="compare_models").set_value(["median", "bilateral"])
    app.run()
    assert not app.exception, app.exception
    table = app.dataframe[0].value
    assert list(table["model"]) == ["Median filter", "Bilateral filter"]
    # Moving the crop shows other pixels of the cached outputs; no model runs again.
    before = [image.proto.imgs[0].url for image in app.get("image")]
    cache = len(result_cache())
    app.session_state["compare_center"] = (0, 0)  # where a click on the map's top left corner puts it
    app.run()
    assert len(result_cache()) == cache
    assert [image.proto.imgs[0].url for image in app.get("image")] != before
    assert (table["PSNR (dB)"] > 20).all()


@pytest.mark.slow
@pytest.mark.parametrize("kind,suffix,levels,column", [
    ("gaussian", "", [15, 50], "Median filter"),
    ("camera", "_camera", [4, 64], "noisy input"),
])
def test_noise_analysis_page_sweeps_sigma_or_camera_iso(app, kind, suffix, levels, column):
    app.switch_page("pages/noise_analysis.py")
    app.run()
    app.selectbox(key="analysis_kind").set_value(kind)
    app.run()
    app.multiselect(key=f"analysis_models{suffix}").set_value(["median"])
    app.multiselect(key=f"analysis_sigmas{suffix}").set_value(levels)
    app.run()
    assert not app.exception, app.exception
    table = app.dataframe[0].value
    assert list(table.index) == levels
    assert table.loc[levels[0], column] > table.loc[levels[1], column]


def test_short_titles_tell_every_model_apart():
    names = available_models()
    titles = [short_title(name, read_manifest()) for name in names]
    assert len(set(titles)) == len(names)
    assert max(len(title) for title in titles) <= 24  # a chip on a 390-px phone sidebar


def test_about_page_lists_every_model(app):
    app.switch_page("pages/about.py")
    app.run()
    assert not app.exception
    assert len(app.expander) == len(available_models())
    from denoiser.catalog import read_manifest

    captions = " ".join(caption.value for caption in app.caption)
    aware = [entry for entry in read_manifest().values() if "quantization_aware" in entry]
    assert captions.count("fine-tuned for int8") == len(aware)


def test_the_about_page_names_the_noise_estimate_the_code_calls():
    import inspect

    from denoiser import engine

    called = "estimate_level"
    assert called in inspect.getsource(service.photo_level) and called in inspect.getsource(engine.default_level)
    about = open(os.path.join(ROOT, "pages", "about.py")).read()
    assert called in about and "Donoho" not in about


def test_a_level_beyond_the_models_training_is_said(app):
    name = app.selectbox(key="model_gaussian").value
    high = read_manifest()[name]["sigma_range"][1]
    app.slider(key="noise_level").set_value(75)
    app.run()
    assert not app.exception, app.exception
    assert any(f"trained on noise levels 0 to {high:g}" in w.value for w in app.warning)
    app.slider(key="noise_level").set_value(25)
    app.run()
    assert not any("trained on noise levels" in w.value for w in app.warning)


def stopped_at(at, key, done, total):
    """The session as a Stop leaves it: the page's callback, or Streamlit's own Stop, notes it so."""
    at.session_state["_run_board"] = {"key": key, "done": done, "total": total, "stopped": True}


def test_after_a_stop_the_denoise_page_says_where_and_runs_again_only_on_the_button(app, monkeypatch):
    fast_model(app)
    runs = []
    original = service.run_demo
    monkeypatch.setattr(service, "run_demo", lambda *a, **k: runs.append(k["seed"]) or original(*a, **k))
    picture = service.image_key(service.load_sample("Astronaut").pixels)
    # Seeds of their own, whose results no other test has left in the server's cache.
    stopped_at(app, service.DenoiseRequest(picture, "median", noise="gaussian", level=25, seed=7001), 3, 9)
    app.number_input(key="noise_seed").set_value(7001)
    app.run()
    assert not app.exception, app.exception
    assert runs == []
    assert [w.value for w in app.warning] == ["Stopped after 3 of 9 tiles. Median filter did not finish the whole "
                                              "photo."]
    assert not app.metric and not app.get("download_button")
    app.button(key="denoise_whole").click()
    app.run()
    assert not app.exception, app.exception
    assert runs == [7001] and not app.warning
    assert metric(app, "PSNR denoised")
    # Done, the stop is forgotten: the next seed runs at once.
    app.number_input(key="noise_seed").set_value(7002)
    app.run()
    assert runs == [7001, 7002] and not app.warning


@pytest.mark.slow
def test_after_a_stop_compare_says_where_and_runs_again_only_on_the_button(app):
    app.switch_page("pages/compare.py")
    app.run()
    app.multiselect(key="compare_models").set_value(["median", "bilateral"])
    picture = service.image_key(service.load_sample("Astronaut").pixels)
    app.number_input(key="compare_noise_seed").set_value(7003)
    stopped_at(app, ("compare", picture, ("median", "bilateral"), "gaussian", 25, 7003), 1, 2)
    app.run()
    assert not app.exception, app.exception
    assert [w.value for w in app.warning] == ["Stopped after 1 of 2 models."]
    assert not app.dataframe
    app.button(key="run_again").click()
    app.run()
    assert not app.exception, app.exception
    assert list(app.dataframe[0].value["model"]) == ["Median filter", "Bilateral filter"] and not app.warning
