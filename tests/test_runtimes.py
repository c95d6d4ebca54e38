import os

import numpy as np
import pytest

from denoiser import metrics, noise
from denoiser.catalog import available_models, load_runtime
from denoiser.engine import denoise, denoise_whole
from denoiser.errors import DenoiserError
from denoiser.training.export import export_file, representative_patches
from denoiser.runtimes import ClassicalRuntime, KerasRuntime, LiteRTRuntime
from denoiser.tiling import plan_axis, plan_tiles

TILE, BATCH, MARGIN = 32, 2, 5

# Stated tolerances of each LiteRT variant against Keras float on [0, 1] images
# (one gray level is 0.0039): (largest absolute difference, mean absolute difference).
# The tiny random test model has a wide noise range, harder on int8 than a trained one.
TOLERANCE = {
    "float32": (1e-5, 1e-6),
    "float16": (2e-3, 5e-4),
    "int8_dynamic": (2e-2, 4e-3),
    "int8_full": (5e-2, 8e-3),
}


@pytest.fixture(scope="module")
def exported(tiny_dncnn, tmp_path_factory):
    folder = tmp_path_factory.mktemp("tflite")
    rng = np.random.default_rng(0)
    clean = rng.random((4, 64, 64, 3)).astype(np.float32)
    representative = representative_patches(clean, tile=TILE, count=8, rng=rng)
    return {
        variant: export_file(tiny_dncnn, folder / f"{variant}.tflite", variant, tile=TILE, batch=BATCH,
                             representative=representative)
        for variant in TOLERANCE
    }


@pytest.mark.parametrize("variant", sorted(TOLERANCE))
def test_litert_matches_keras_within_stated_tolerance(variant, exported, tiny_dncnn):
    path, output = exported[variant]
    assert output == "noise"
    image = np.random.default_rng(1).random((70, 45, 3)).astype(np.float32)
    keras_out = denoise(image, KerasRuntime(tiny_dncnn, margin=MARGIN, tile=TILE))
    litert_out = denoise(image, LiteRTRuntime(path, margin=MARGIN, output=output))
    largest, mean = TOLERANCE[variant]
    difference = np.abs(litert_out - keras_out)
    assert difference.max() < largest and difference.mean() < mean


def test_litert_invokes_once_per_batch_and_resizes_once_per_tile_shape(exported, monkeypatch):
    path, output = exported["float32"]
    runtime = LiteRTRuntime(path, margin=MARGIN, output=output)
    interpreter = runtime._interpreter
    calls, resized = [], []
    original_invoke, original_resize = interpreter.invoke, interpreter.resize_tensor_input
    monkeypatch.setattr(interpreter, "invoke", lambda: (calls.append(1), original_invoke())[1])
    monkeypatch.setattr(interpreter, "resize_tensor_input",
                        lambda index, shape, **k: (resized.append(tuple(shape)), original_resize(index, shape, **k))[1])
    tiles = np.random.default_rng(0).random((5, TILE, TILE, 3)).astype(np.float32)
    assert runtime.predict(tiles).shape == tiles.shape
    assert len(calls) == 3 and resized == []  # 5 tiles in batches of 2, the last one filled up
    short = tiles[:, :20, :27]
    for _ in range(2):
        assert runtime.predict(short).shape == short.shape
    assert resized == [(BATCH, 20, 27, 3)]


def test_litert_tiles_shrink_and_match_its_whole_image_result(exported):
    """Tiles of an image's own shape, with no padding: tiling changes no pixel."""
    path, output = exported["float32"]
    runtime = LiteRTRuntime(path, margin=MARGIN, output=output)
    image = np.random.default_rng(2).random((75, 61, 3)).astype(np.float32)
    seen = []
    runtime.predict = lambda tiles, predict=runtime.predict, **k: (seen.append(tiles.shape[1:3]), predict(tiles, **k))[1]
    tiled = denoise(image, runtime)
    shape = (plan_axis(75, TILE, MARGIN)[0].length, plan_axis(61, TILE, MARGIN)[0].length)
    assert set(seen) == {shape} and shape[1] < TILE
    whole = LiteRTRuntime(path, margin=MARGIN, output=output).predict(image[None])[0]
    np.testing.assert_allclose(tiled, whole, atol=1e-6)
    assert denoise(image[:9, :13], runtime).shape == (9, 13, 3)


def test_litert_threads_default_to_the_machine(exported):
    path, output = exported["float32"]
    assert LiteRTRuntime(path, margin=MARGIN).threads == (os.cpu_count() or 1)


def test_bad_model_files_raise_package_error(tmp_path):
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"not a model")
    with pytest.raises(DenoiserError):
        LiteRTRuntime(bad, margin=3)
    with pytest.raises(DenoiserError, match="unknown model"):
        load_runtime("no_such_model", models_dir=tmp_path)


@pytest.mark.parametrize("method", ["nlm", "median", "bilateral"])
def test_classical_filters_remove_gaussian_noise(method, astronaut_crop):
    clean = astronaut_crop
    noisy = noise.gaussian(clean, 25, rng=np.random.default_rng(0))
    denoised = denoise(noisy, load_runtime(method), level=25)
    assert denoised.shape == clean.shape
    assert metrics.psnr(clean, denoised) > metrics.psnr(clean, noisy) + 1.0


def test_median_is_the_tool_for_impulse_noise(astronaut_crop):
    clean = astronaut_crop
    noisy = noise.salt_and_pepper(clean, 0.1, rng=np.random.default_rng(0))
    median = denoise(noisy, ClassicalRuntime("median", channels=None), level=10)
    nlm = denoise(noisy, ClassicalRuntime("nlm", channels=None), level=10)
    assert metrics.psnr(clean, median) > metrics.psnr(clean, noisy) + 8.0
    assert metrics.psnr(clean, median) > metrics.psnr(clean, nlm) + 3.0


def test_classical_filters_use_the_blind_estimate_when_sigma_is_unknown(astronaut):
    noisy = noise.gaussian(astronaut, 25, rng=np.random.default_rng(0))
    runtime = load_runtime("nlm")
    assert metrics.psnr(astronaut, denoise(noisy, runtime)) > metrics.psnr(astronaut, noisy) + 1.0
    with pytest.raises(DenoiserError):
        denoise_whole(noisy, runtime)


def test_saved_keras_model_loads_by_path(tiny_dncnn, tmp_path):
    path = tmp_path / "m.keras"
    tiny_dncnn.save(path)
    runtime = load_runtime(str(path))
    assert runtime.margin == 5 and runtime.channels == 3
    assert "nlm" in available_models(tmp_path)


@pytest.mark.skipif(
    not __import__("tensorflow").config.list_physical_devices("GPU"), reason="no GPU visible to TensorFlow"
)
def test_keras_runtime_runs_on_the_gpu(tiny_dncnn):
    import tensorflow as tf

    runtime = KerasRuntime(tiny_dncnn, margin=MARGIN, tile=TILE)
    assert runtime.device == "GPU"
    image = np.random.default_rng(0).random((50, 50, 3)).astype(np.float32)
    with tf.device("/GPU:0"):
        on_gpu = denoise(image, runtime)
    with tf.device("/CPU:0"):
        on_cpu = denoise(image, runtime)
    np.testing.assert_allclose(on_gpu, on_cpu, atol=1e-4)


def test_manifest_default_comes_first_and_missing_files_are_hidden(tmp_path, tiny_dncnn):
    import json

    tiny_dncnn.save(tmp_path / "a.keras")
    tiny_dncnn.save(tmp_path / "b.keras")
    manifest = {"defaults": {"gaussian": {"model": "b", "why": "the test's choice"}}, "models": {
        "a": {"file": "a.keras"}, "b": {"file": "b.keras"}, "gone": {"file": "gone.keras"},
    }}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    assert available_models(tmp_path) == ["b", "a", "bilateral", "median", "nlm"]
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(DenoiserError, match="manifest"):
        available_models(tmp_path)


def test_shipped_models_spend_little_on_margins():
    """The catalog's tiling: on a 1024-pixel image the tiles of every shipped model add
    at most 15% to the pixels computed, and none is larger than 544 pixels but the Keras
    DnCNN's, whose whole-image rate is its best, and the U-Net's: its int8 LiteRT file
    held about 360 bytes a pixel of its tile (a 1024 tile took 380 MB more than none),
    where the LiteRT DnCNN holds about 1.3 KB."""
    from denoiser.catalog import read_manifest

    for name, entry in read_manifest().items():
        runtime = load_runtime(name)
        tiles = plan_tiles(1024, 1024, tile=runtime.tile, margin=runtime.margin, align=runtime.multiple)
        assert sum(rows.length * columns.length for rows, columns in tiles) <= 1.15 * 1024**2, name
        large_tiles_fit = (runtime.kind, entry["architecture"]) == ("keras", "dncnn") or entry["architecture"] == "unet"
        assert runtime.tile <= 544 or (large_tiles_fit and runtime.tile <= 1024), name
        if entry["architecture"] == "ridnet":
            assert runtime.margin == 16 < entry["receptive_radius"], name
