"""Real photos: level-map models, the photo-noise estimate, pairs, and the real-photo
training run, on tiny models and images that packages ship."""

import json

import keras
import numpy as np
import pytest
from PIL import Image

from support import randomize
from denoiser import metrics, noise, profile
from denoiser.architectures.registry import build_model
from denoiser.training.config import RealConfig
from denoiser.engine import denoise, denoise_whole, level_map
from denoiser.errors import DenoiserError
from denoiser.evaluate import evaluate_pairs
from denoiser.training.export import export_file
from denoiser.pairs import pair_files
from denoiser.runtimes import KerasRuntime, LiteRTRuntime
from denoiser.training.train import transfer_weights

TINY = {"dncnn": {"depth": 5, "features": 8}, "ridnet": {"features": 8, "blocks": 1, "reduction": 4}}


@pytest.fixture(scope="module")
def level_dncnn():
    return randomize(build_model("dncnn", 3, level_map=True, **TINY["dncnn"]), seed=3)


def with_level(image, level):
    return np.concatenate([image, np.full(image.shape[:2] + (1,), level / 255, np.float32)], axis=2)


@pytest.mark.parametrize("name", sorted(TINY))
def test_level_map_models_read_one_channel_more_and_round_trip(name, tmp_path):
    model = randomize(build_model(name, 3, level_map=True, **TINY[name]))
    assert model.input_shape[-1] == 4 and model.output_shape[-1] == 3
    x = np.random.default_rng(0).random((1, 19, 23, 4)).astype(np.float32)
    low, high = x.copy(), x.copy()
    low[..., 3], high[..., 3] = 0.01, 0.1
    # The level changes what the model removes.
    assert np.abs(model.predict_on_batch(low) - model.predict_on_batch(high)).max() > 1e-3
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(loaded.predict_on_batch(x), model.predict_on_batch(x), atol=1e-6)


def test_a_level_map_model_started_from_a_blind_one_computes_the_same(tiny_dncnn, astronaut):
    model = transfer_weights(tiny_dncnn, build_model("dncnn", 3, level_map=True, depth=5, features=8))
    for level in (0, 30):
        np.testing.assert_allclose(model.predict_on_batch(with_level(astronaut, level)[None]),
                                   tiny_dncnn.predict_on_batch(astronaut[None]), atol=1e-5)


@pytest.mark.parametrize("shape", [(70, 45, 3), (33, 33, 1), (8, 100, 3)])
def test_tiled_level_map_model_equals_whole_image(level_dncnn, shape):
    image = np.random.default_rng(1).random(shape).astype(np.float32)
    runtime = KerasRuntime(level_dncnn, margin=5, tile=16)
    assert runtime.level_map and runtime.channels == 3
    level = np.random.default_rng(2).uniform(0, 30, shape[:2])
    tiled = denoise(image, runtime, level=level, batch=3)
    reference = image if shape[2] == 3 else np.repeat(image, 3, axis=2)
    whole = denoise_whole(reference, runtime, level=level)
    np.testing.assert_allclose(tiled, whole if shape[2] == 3 else whole.mean(axis=2, keepdims=True), atol=1e-5)


def test_levels_out_of_range_or_of_the_wrong_shape_are_refused(level_dncnn):
    runtime = KerasRuntime(level_dncnn, margin=5, tile=16)
    image = np.zeros((20, 20, 3), np.float32)
    for bad in (-1, 256, float("nan"), np.zeros((5, 5))):
        with pytest.raises(DenoiserError, match="noise level"):
            denoise(image, runtime, level=bad)
    assert level_map(10, (4, 6, 3)).shape == (4, 6, 1)


def test_without_a_level_the_photo_estimate_is_used(level_dncnn, astronaut):
    runtime = KerasRuntime(level_dncnn, margin=5, tile=64)
    estimate = profile.estimate_level(astronaut)
    np.testing.assert_array_equal(denoise(astronaut, runtime), denoise(astronaut, runtime, level=estimate))


# Stated tolerance of LiteRT against Keras for a level-map model: as for the blind ones.
LITERT_TOLERANCE = {"float16": (2e-3, 5e-4), "int8_dynamic": (2e-2, 4e-3)}


@pytest.mark.parametrize("variant", sorted(LITERT_TOLERANCE))
def test_level_map_model_exports_to_litert_within_tolerance(level_dncnn, tmp_path, variant):
    path, output = export_file(level_dncnn, tmp_path / "m.tflite", variant, tile=32, batch=2)
    lite = LiteRTRuntime(path, margin=5, output=output)
    assert lite.level_map and lite.channels == 3
    image = np.random.default_rng(1).random((70, 45, 3)).astype(np.float32)
    expected = denoise(image, KerasRuntime(level_dncnn, margin=5, tile=32), level=12)
    difference = np.abs(denoise(image, lite, level=12) - expected)
    largest, mean = LITERT_TOLERANCE[variant]
    assert difference.max() < largest and difference.mean() < mean


def white(image, sigma, seed=0):
    return image + np.random.default_rng(seed).standard_normal(image.shape).astype(np.float32) * sigma / 255


def test_photo_estimate_reads_camera_noise_that_the_white_estimate_misses(astronaut_crop):
    """Camera noise is correlated and JPEG-compressed: the wavelet estimate sees a
    fraction of it; the photo estimate is within 40% of the true level."""
    rendered = noise.camera(astronaut_crop, 0, rng=np.random.default_rng(0), jpeg_quality=None)
    for iso in (1600, 6400):
        noisy = noise.camera(astronaut_crop, iso, rng=np.random.default_rng(0), jpeg_quality=90)
        true = float(np.std(noisy - rendered) * 255)
        assert abs(metrics.estimate_photo_noise(noisy) - true) < 0.4 * true
        assert metrics.estimate_noise_sigma(noisy) < 0.6 * true


def test_photo_estimate_grows_with_the_noise_even_on_an_image_smaller_than_a_block(astronaut_crop):
    for crop in (astronaut_crop, astronaut_crop[:9, :12]):
        levels = [metrics.estimate_photo_noise(white(crop, s)) for s in (0, 5, 10, 20)]
        assert np.all(np.diff(levels) > 0)
    with pytest.raises(ValueError, match="at least 2x2"):
        metrics.estimate_photo_noise(np.zeros((1, 40, 3), np.float32))


def save(path, image):
    Image.fromarray(np.rint(np.clip(image, 0, 1) * 255).astype(np.uint8)).save(path)


@pytest.fixture
def pairs_dir(tmp_path, astronaut_crop):
    folder = tmp_path / "pairs"
    folder.mkdir()
    for i, name in enumerate(["a", "b", "c"]):
        clean = astronaut_crop[i * 16 : i * 16 + 128, :128]
        save(folder / f"{name}_clean.png", clean)
        save(folder / f"{name}_noisy.png", white(clean, 10, seed=i))
    save(folder / "d_mean.png", astronaut_crop[:32, :32])  # no noisy partner: left out
    (folder / "notes_noisy.txt").write_text("not an image")
    return folder


def test_pairs_are_matched_by_name(pairs_dir, tmp_path):
    pairs = pair_files(pairs_dir)
    assert list(pairs) == ["a", "b", "c"]
    assert all(noisy.name.endswith("_noisy.png") and clean.name.endswith("_clean.png") for noisy, clean in pairs.values())
    (tmp_path / "empty").mkdir()
    with pytest.raises(DenoiserError, match="no noisy/clean pairs"):
        pair_files(tmp_path / "empty")


def test_evaluate_pairs_scores_each_model_against_the_clean_reference(pairs_dir, level_dncnn):
    from denoiser.catalog import load_runtime

    runtimes = {"median": load_runtime("median"), "keras": KerasRuntime(level_dncnn, margin=5, tile=32)}
    rows = evaluate_pairs(runtimes, pairs_dir, scenes=["a", "c"], crop=96)
    assert [r.model for r in rows] == ["median", "keras"] and all(r.images == 2 for r in rows)
    clean = np.asarray(Image.open(pairs_dir / "a_clean.png"), np.float32) / 255
    noisy = np.asarray(Image.open(pairs_dir / "a_noisy.png"), np.float32) / 255
    centre = (slice(16, 112), slice(16, 112))
    expected_noisy = np.mean([metrics.psnr(clean[centre], noisy[centre]),
                              metrics.psnr(*(np.asarray(Image.open(pairs_dir / f"c_{r}.png"), np.float32)[centre] / 255
                                             for r in ("clean", "noisy")))])
    assert rows[0].psnr_noisy == pytest.approx(expected_noisy)
    assert rows[0].psnr > rows[0].psnr_noisy  # the median filter helps against this noise
    with pytest.raises(DenoiserError, match="no pairs named"):
        evaluate_pairs(runtimes, pairs_dir, scenes=["zzz"])
    one_camera = evaluate_pairs(runtimes, pairs_dir, camera="A", crop=96)  # scene "a" is its own camera
    assert one_camera[0].images == 1
    with pytest.raises(DenoiserError, match="no scenes of camera 'sony'"):
        evaluate_pairs(runtimes, pairs_dir, camera="sony")


def test_real_photo_run_checkpoints_holds_out_whole_scenes_and_resumes(train_dir, tmp_path, tiny_dncnn):
    from denoiser.training.real_training import RealBatches, split_scenes, train_real

    pairs_dir = tmp_path / "real"
    pairs_dir.mkdir()
    source = np.asarray(Image.open(sorted(train_dir.iterdir())[0]), np.float32) / 255
    for camera in ("canon", "nikon"):
        for i in range(4):
            save(pairs_dir / f"{camera}_s{i}_mean.png", source)
            save(pairs_dir / f"{camera}_s{i}_Real.png", white(source, 8, seed=i))
    train, held = split_scenes(pair_files(pairs_dir))
    assert held == ["canon_s1", "nikon_s1"] and not set(train) & set(held)

    init = tmp_path / "init.keras"
    tiny_dncnn.save(init)
    config = RealConfig(init_from=str(init), train_dir=str(train_dir), pairs_dir=str(pairs_dir),
                        run_dir=str(tmp_path / "run"), patch_size=24, batch_size=4, steps_per_epoch=2, epochs=1,
                        overrides={"depth": 5, "features": 8})
    state = train_real(config, log=lambda line: None)
    assert state["epoch"] == 1 and state["validation_scenes"] == held
    with pytest.raises(DenoiserError, match="already holds a run"):
        train_real(config, log=lambda line: None)
    resumed = train_real(RealConfig(**{**config.__dict__, "epochs": 2, "lr": 5e-5}), resume=True,
                         log=lambda line: None)
    assert resumed["epoch"] == 2 and resumed["steps"] == 4
    # The schedule is the resumed call's: the second epoch ran at its learning rate.
    rows = (tmp_path / "run" / "log.csv").read_text().splitlines()
    assert float(rows[-1].split(",")[2]) == 5e-5 and resumed["config"]["lr"] == 5e-5
    saved = json.loads((tmp_path / "run" / "state.json").read_text())
    assert saved["epoch"] == 2 and (tmp_path / "run" / "best.keras").exists()
    # A run recorded before `level_input` existed fed the measured level, and resumes so.
    del saved["config"]["level_input"]
    (tmp_path / "run" / "state.json").write_text(json.dumps(saved))
    older = train_real(RealConfig(**{**config.__dict__, "epochs": 3}), resume=True, log=lambda line: None)
    assert older["config"]["level_input"] == "measured"
    model = keras.models.load_model(tmp_path / "run" / "last.keras")
    assert model.input_shape[-1] == 4
    assert not any(layer.trainable for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization))

    flat = np.zeros((3, 40, 40, 3), np.uint8) + 128
    batches = RealBatches(config, flat, [])
    first, again = batches(5), batches(5)
    assert np.array_equal(first[0], again[0]) and first[0].shape == (4, 24, 24, 4)
    # The level channel holds what the app would estimate on each synthetic patch, by default...
    assert config.level_input == "estimate"
    for inputs, clean in zip(*first):
        assert inputs[0, 0, 3] * 255 == pytest.approx(metrics.estimate_photo_noise(inputs[..., :3]), rel=1e-4)
    # ...or, as the runs before the option fed it, the patch's measured noise level.
    measured = RealBatches(RealConfig(**{**config.__dict__, "level_input": "measured"}), flat, [])(5)
    for inputs, clean in zip(*measured):
        assert inputs[0, 0, 3] * 255 == pytest.approx(np.std(inputs[..., :3] - clean) * 255, rel=1e-4)


def test_a_held_out_camera_is_validated_on_every_scene_and_trained_on_none():
    from denoiser.pairs import camera_of
    from denoiser.training.real_training import split_scenes

    scenes = {name: None for name in ["Canon5D2_bag", "Canon5D2_toy", "Nikon800_door", "Nikon_800_carbi"]}
    # PolyU writes one camera two ways; both are that camera.
    assert camera_of("Nikon_800_carbi") == camera_of("Nikon800_door") == "nikon800"
    assert split_scenes(scenes, hold_out_camera="nikon800") == (["Canon5D2_bag", "Canon5D2_toy"],
                                                                ["Nikon800_door", "Nikon_800_carbi"])
    assert split_scenes(scenes, hold_out_camera="Canon5D2")[1] == ["Canon5D2_bag", "Canon5D2_toy"]
    with pytest.raises(DenoiserError, match="no scenes of camera 'sony'.*canon5d2, nikon800"):
        split_scenes(scenes, hold_out_camera="sony")
    with pytest.raises(DenoiserError, match="every scene is of it"):
        split_scenes({"Canon5D2_bag": None}, hold_out_camera="canon5d2")


@pytest.mark.parametrize("arch", ["dncnn", "ridnet"])
def test_mixed_precision_training_keeps_the_image_float32_and_publishes_float32(arch, tmp_path):
    from denoiser.training.real_training import build
    from denoiser.training.train import float32_copy

    overrides = {"dncnn": {"depth": 4, "features": 8}, "ridnet": {"features": 16, "blocks": 1, "reduction": 4}}[arch]
    model = build(RealConfig(arch=arch, init_from="", mixed_precision=True, overrides=overrides))
    assert keras.config.dtype_policy().name == "float32"  # the policy was only lent to the build
    assert model.get_layer("conv_in" if arch == "dncnn" else "head").compute_dtype == "bfloat16"
    x = np.random.default_rng(0).random((1, 24, 24, 4)).astype(np.float32)
    # Untrained, the residual is zero: the image passes through exactly, not in
    # bfloat16's steps of up to 2**-8.
    out = keras.ops.convert_to_numpy(model(x))
    assert out.dtype == np.float32 and np.array_equal(out, x[..., :3])
    model.train_on_batch(x, x[..., :3] * 0.9)
    out = keras.ops.convert_to_numpy(model(x))

    model.save(tmp_path / "mixed.keras")
    published = float32_copy(keras.models.load_model(tmp_path / "mixed.keras"))
    assert {layer.dtype_policy.name for layer in published.layers} == {"float32"}
    np.testing.assert_allclose(keras.ops.convert_to_numpy(published(x)), out, atol=0.02)


@pytest.mark.slow
def test_batches_made_by_worker_processes_equal_the_serial_ones(astronaut_crop):
    from denoiser.training.real_training import RealBatches, batch_stream

    clean = (astronaut_crop * 255).astype(np.uint8)
    noisy = np.clip(clean.astype(int) + np.random.default_rng(0).integers(-9, 10, clean.shape), 0, 255).astype(np.uint8)
    patches = np.stack([clean[:40, :40], clean[-40:, -40:]])
    batches = RealBatches(RealConfig(patch_size=16, batch_size=8), patches, [(noisy, clean, 5.0, 1.0)],
                          np.array([1.0, 2.0]))
    steps = range(3, 9)
    with batch_stream(batches, 0) as serial, batch_stream(batches, 2) as parallel:
        for (x, y), (xp, yp) in zip(serial(steps), parallel(steps), strict=True):
            assert np.array_equal(x, xp) and np.array_equal(y, yp)


@pytest.mark.parametrize("sample", ["astronaut", "chelsea", "coffee"])
def test_do_no_harm_a_clean_photo_comes_back_almost_unchanged(sample):
    """The app's "already noisy" path, at its default strength, on clean photos that
    scikit-image ships: the real-photo model must not smear what has no noise."""
    from skimage import data

    from denoiser.catalog import default_for, load_runtime
    from denoiser.io import to_float
    from denoiser.service import run_noisy_photo

    runtime = load_runtime(default_for("real_photo"))
    assert runtime.level_map
    clean = to_float(getattr(data, sample)()[..., :3])
    result = run_noisy_photo(clean, runtime)
    assert metrics.psnr(clean, result.denoised_float) >= 38.0


def test_real_targets_take_the_shots_slow_drift_but_not_its_noise():
    from denoiser.training.real_training import aligned_mean

    rng = np.random.default_rng(0)
    clean = np.full((200, 200, 3), 100.0)
    drift = np.linspace(-4, 4, 200)[None, :, None] * np.ones((200, 1, 3))
    noise = rng.normal(0, 6, clean.shape)
    noisy = np.clip(np.rint(clean + drift + noise), 0, 255).astype(np.uint8)
    target = aligned_mean(noisy, clean.astype(np.uint8)).astype(np.float64)
    inner = (slice(50, 150), slice(50, 150))
    assert np.abs(target - clean - drift)[inner].mean() < 0.6  # the drift is in the target
    assert np.std((noisy - target)[inner]) == pytest.approx(6, rel=0.1)  # the noise is not


def test_the_shipped_real_photo_models_strength_changes_what_it_removes(astronaut_crop):
    """More strength removes more: the change to a camera-noisy photo grows with the level."""
    from denoiser.catalog import default_for, load_runtime

    runtime = load_runtime(default_for("real_photo"))
    noisy = noise.camera(astronaut_crop, 1600, rng=np.random.default_rng(0))
    removed = [float(np.std(noisy - denoise(noisy, runtime, level=level))) * 255 for level in (0, 4, 12)]
    assert removed[0] < removed[1] < removed[2] and removed[2] > 1.5 * removed[0]


def test_fitted_batches_feed_noisy_patches_their_true_level_and_clean_ones_the_estimate(astronaut_crop):
    from denoiser import camera
    from denoiser.training.real_training import RealBatches

    clean = (astronaut_crop * 255).astype(np.uint8)
    noisy = np.clip(clean.astype(int) + np.random.default_rng(0).integers(-9, 10, clean.shape), 0, 255).astype(np.uint8)
    config = RealConfig(patch_size=24, batch_size=8, real_share=0.25, clean_share=0.125, level_input="measured",
                        synthetic="fitted", mean_share=0.5, camera_range=camera.fitted_blend().as_dict())
    batches = RealBatches(config, np.stack([clean[:48, :48], clean[-48:, -48:]]), [(noisy, clean, 5.0, 1.0)])
    inputs, targets = batches(3)
    again = batches(3)
    assert np.array_equal(inputs, again[0]) and inputs.shape == (8, 24, 24, 4)
    levels = inputs[:, 0, 0, 3] * 255
    # First the clean patch, at what the estimator reads on it; then the synthetic ones,
    # at the std of their true noise; the real crops last, at their scene's level.
    assert np.array_equal(inputs[0, ..., :3], targets[0])
    assert levels[0] == pytest.approx(profile.estimate_level(targets[0]), abs=1e-3)
    for i in range(1, 6):
        assert levels[i] == pytest.approx(np.std(inputs[i, ..., :3] - targets[i]) * 255, rel=1e-3)
    assert levels[6:] == pytest.approx([5.0, 5.0], rel=1e-5)


def test_a_run_with_only_its_compact_weights_resumes_from_them(tmp_path, level_dncnn):
    import json

    from denoiser.training.run import COMPACT, open_run, save_compact

    run = tmp_path / "run"
    run.mkdir()
    config = RealConfig(run_dir=str(run), init_from="models/none.keras")
    (run / "state.json").write_text(json.dumps({"config": config.__dict__, "epoch": 3, "train_seconds": 1.0}))
    save_compact(level_dncnn, run / COMPACT)
    with np.load(run / COMPACT) as saved:
        assert {saved[name].dtype for name in saved.files} == {np.dtype(np.float16)}

    def start(config):
        # A fresh model of the run's kind; the starting weights' file is not needed.
        assert config.init_from == ""
        fresh = keras.models.clone_model(level_dncnn)
        fresh.compile(optimizer="adam", loss="mse")
        return fresh

    _, model, state = open_run(config, True, load=keras.models.load_model, start=start)
    assert state["epoch"] == 3
    for saved, restored in zip(level_dncnn.get_weights(), model.get_weights()):
        np.testing.assert_allclose(restored, saved.astype(np.float16), rtol=0, atol=0)
