import csv
import json

import numpy as np
import pytest

from denoiser.io import list_images
from denoiser.training import data
from denoiser.errors import DenoiserError
from denoiser.training.config import TrainConfig, learning_rate
from denoiser.training.train import train


def test_batches_are_a_pure_function_of_seed_epoch_and_index(rng):
    patches = rng.integers(0, 256, (50, 8, 8, 3), dtype=np.uint8)
    a = data.make_batch(patches, batch_size=4, sigma_range=(0, 55), seed=1, epoch=2, index=3)
    b = data.make_batch(patches, batch_size=4, sigma_range=(0, 55), seed=1, epoch=2, index=3)
    c = data.make_batch(patches, batch_size=4, sigma_range=(0, 55), seed=1, epoch=3, index=3)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[0], c[0])


def test_augment_covers_the_eight_dihedral_transforms(rng):
    patch = rng.integers(0, 256, (1, 5, 5, 1), dtype=np.uint8)
    variants = {data.augment(patch, [m]).tobytes() for m in range(8)}
    assert len(variants) == 8


def test_patches_cover_scales_and_stride(train_dir):
    files = list_images(train_dir)
    one = data.extract_patches(files, channels=3, patch_size=16, stride=16, scales=(1.0,))
    two = data.extract_patches(files, channels=3, patch_size=16, stride=16, scales=(1.0, 0.5))
    assert one.shape == (6 * 16, 16, 16, 3) and len(two) == 6 * (16 + 4)


def test_fixed_sigma_noise(rng):
    patches = np.full((10, 32, 32, 1), 128, np.uint8)
    noisy, clean = data.make_batch(patches, batch_size=8, sigma_range=(25, 25), seed=0, epoch=0, index=0)
    assert abs((noisy - clean).std() * 255 - 25) < 1.0


def test_a_noise_mix_gives_each_patch_one_type_at_its_level():
    patches = np.full((10, 32, 32, 3), 128, np.uint8)
    mix = ("salt_and_pepper", "speckle")
    noisy, clean = data.make_batch(patches, batch_size=32, sigma_range=(25, 25), seed=0, epoch=0, index=0, noise=mix)
    again, _ = data.make_batch(patches, batch_size=32, sigma_range=(25, 25), seed=0, epoch=0, index=0, noise=mix)
    assert np.array_equal(noisy, again) and noisy.dtype == np.float32
    impulses = np.isin(noisy, (0.0, 1.0)).all(axis=-1).mean(axis=(1, 2))
    # Salt and pepper at level 25 hits about 10% of the pixels; speckle hits none to 0 or 1.
    is_impulse = impulses > 0.05
    assert 0 < is_impulse.sum() < 32
    assert np.allclose(impulses[is_impulse], 25 / 255, atol=0.04)
    speckled = noisy[~is_impulse] - clean[~is_impulse]
    assert abs(speckled.std() / clean[0, 0, 0, 0] * 255 - 25) < 1.5


def test_learning_rate_halves_on_schedule():
    config = TrainConfig(lr=1e-3, lr_halve_every=2, min_lr=1e-4)
    assert [learning_rate(config, e) for e in range(0, 10, 2)] == [1e-3, 5e-4, 2.5e-4, 1.25e-4, 1e-4]


def test_train_checkpoints_and_resumes(train_dir, tmp_path):
    run = tmp_path / "run"
    config = TrainConfig(
        arch="dncnn", channels=3, train_dir=str(train_dir), run_dir=str(run), patch_size=16, stride=16,
        scales=(1.0,), batch_size=4, steps_per_epoch=2, epochs=1, val_fraction=0.2,
        overrides={"depth": 3, "features": 4},
    )
    state = train(config, verbose=0)
    assert state["epoch"] == 1 and (run / "last.keras").exists() and (run / "best.keras").exists()
    with pytest.raises(DenoiserError, match="--resume"):
        train(config, verbose=0)
    config.epochs = 3
    state = train(config, resume=True, verbose=0)
    assert state["epoch"] == 3 and state["steps"] == 6
    saved = json.loads((run / "state.json").read_text())
    assert saved["epoch"] == 3 and len(saved["validation_files"]) == 1
    with open(run / "log.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2, 3]  # row 0: the starting weights
    assert all(float(r["val_psnr_25"]) > 10 for r in rows)
    # A run folder that was moved resumes where it is now.
    moved = tmp_path / "moved"
    run.rename(moved)
    config.epochs, config.run_dir = 4, str(moved)
    assert train(config, resume=True, verbose=0)["epoch"] == 4
    assert not run.exists() and json.loads((moved / "state.json").read_text())["epoch"] == 4


def test_a_noise_mix_run_validates_every_type_and_keeps_the_best_mean(train_dir, tmp_path):
    run = tmp_path / "mix"
    config = TrainConfig(
        arch="dncnn", channels=3, train_dir=str(train_dir), run_dir=str(run), patch_size=16, stride=16,
        scales=(1.0,), batch_size=4, steps_per_epoch=2, epochs=1, val_fraction=0.2,
        overrides={"depth": 3, "features": 4}, noise=("gaussian", "random_impulse"),
    )
    state = train(config, verbose=0)
    with open(run / "log.csv") as f:
        start, row = list(csv.DictReader(f))
    assert int(start["epoch"]) == 0 and int(row["epoch"]) == 1
    mean = (float(row["val_psnr_gaussian"]) + float(row["val_psnr_random_impulse"])) / 2
    assert float(row["val_psnr_mean"]) == pytest.approx(mean)
    assert state["best_val_psnr_mean"] == pytest.approx(mean)
    assert json.loads((run / "state.json").read_text())["config"]["noise"] == ["gaussian", "random_impulse"]


def test_batch_norm_recalibration_makes_inference_match_training_mode():
    from support import randomize
    from denoiser.architectures.registry import build_model
    from denoiser.training.train import recalibrate_batch_norm

    model = randomize(build_model("dncnn", 3, depth=4, features=8))
    batch = np.random.default_rng(0).random((8, 16, 16, 3)).astype(np.float32)
    training = np.asarray(model(batch, training=True))
    stale = np.abs(np.asarray(model(batch, training=False)) - training).max()
    recalibrate_batch_norm(model, [(batch, None)] * 200)
    fresh = np.abs(np.asarray(model(batch, training=False)) - training).max()
    assert fresh < 0.05 * stale


def test_gray_model_started_from_colour_computes_the_colour_models_channel_mean(tiny_dncnn, camera):
    from denoiser.architectures.registry import build_model
    from denoiser.training.train import transfer_weights

    gray = transfer_weights(tiny_dncnn, build_model("dncnn", 1, depth=5, features=8))
    noisy = camera[None, :48, :48]
    expected = np.asarray(tiny_dncnn(np.repeat(noisy, 3, axis=-1))).mean(axis=-1, keepdims=True)
    np.testing.assert_allclose(np.asarray(gray(noisy)), expected, atol=1e-5)
    assert np.abs(expected - noisy).max() > 0.01


def test_transfer_refuses_weights_that_do_not_fit(tiny_dncnn):
    from denoiser.architectures.registry import build_model
    from denoiser.training.train import transfer_weights

    with pytest.raises(ValueError, match="conv_in"):
        transfer_weights(tiny_dncnn, build_model("dncnn", 3, depth=5, features=16))


def test_a_run_can_start_from_another_models_weights(train_dir, tmp_path, tiny_dncnn):
    source = tmp_path / "colour.keras"
    tiny_dncnn.save(source)
    config = TrainConfig(
        arch="dncnn", channels=1, train_dir=str(train_dir), run_dir=str(tmp_path / "gray"), patch_size=16,
        stride=16, scales=(1.0,), batch_size=4, steps_per_epoch=1, epochs=1, val_fraction=0.2, lr=1e-6, min_lr=1e-6,
        init_from=str(source), overrides={"depth": 5, "features": 8},
    )
    train(config, verbose=0)
    import keras

    trained = keras.models.load_model(tmp_path / "gray" / "last.keras")
    # One Adam step moves each weight by about the learning rate.
    np.testing.assert_allclose(trained.get_layer("conv_1").get_weights()[0], tiny_dncnn.get_layer("conv_1").get_weights()[0],
                               atol=1e-5)
    saved = json.loads((tmp_path / "gray" / "state.json").read_text())
    assert saved["config"]["init_from"] == str(source)


def fine_tuning(train_dir, run_dir, **options):
    """A one-epoch fine-tuning of a tiny DnCNN on tiny patches."""
    return TrainConfig(arch="dncnn", channels=3, train_dir=str(train_dir), run_dir=str(run_dir), patch_size=16,
                       stride=16, scales=(1.0,), batch_size=4, steps_per_epoch=2, epochs=1, val_fraction=0.2, lr=1e-4,
                       **options)


def test_quantization_aware_fine_tuning_starts_from_a_trained_model(train_dir, tmp_path, tiny_dncnn):
    import keras

    from denoiser.architectures.quantized import QuantizedConv2D

    config = fine_tuning(train_dir, tmp_path / "aware", quantization_aware=True)
    with pytest.raises(DenoiserError, match="--init-from"):
        train(config, verbose=0)
    tiny_dncnn.save(tmp_path / "start.keras")
    config.init_from = str(tmp_path / "start.keras")
    state = train(config, verbose=0)
    model = keras.models.load_model(tmp_path / "aware" / "last.keras")
    assert {type(layer) for layer in model.layers if "conv" in layer.name} == {QuantizedConv2D}
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in model.layers)
    config.epochs = 2
    assert train(config, resume=True, verbose=0)["epoch"] == 2 and state["config"]["quantization_aware"]


def test_a_resumed_log_keeps_its_columns_and_refuses_a_new_one(tmp_path):
    from denoiser.training.run import log_row

    path = tmp_path / "log.csv"
    log_row(path, {"epoch": 1, "loss": 0.5, "val_psnr": 30.0})
    log_row(path, {"val_psnr": 31.0, "epoch": 2, "loss": 0.4})
    with open(path) as handle:
        assert list(csv.reader(handle)) == [["epoch", "loss", "val_psnr"], ["1", "0.5", "30.0"], ["2", "0.4", "31.0"]]
    with pytest.raises(DenoiserError, match="no column for ssim"):
        log_row(path, {"epoch": 3, "ssim": 0.9})


def test_full_integer_fine_tuning_keeps_the_ranges_the_converter_will_calibrate(train_dir, tmp_path, tiny_dncnn):
    import keras

    from denoiser.architectures.quantized import IntegerConv2D
    from denoiser.training.export import conversion_samples
    from denoiser.training.qat import calibrate_ranges

    tiny_dncnn.save(tmp_path / "start.keras")
    config = fine_tuning(train_dir, tmp_path / "full", init_from=str(tmp_path / "start.keras"), full_integer=True)
    with pytest.raises(DenoiserError, match="--quantization-aware"):
        train(config, verbose=0)
    config.quantization_aware = True
    train(config, verbose=0)
    model = keras.models.load_model(tmp_path / "full" / "last.keras")
    assert [type(layer).__name__ for layer in model.layers if "conv" in layer.name] == ["Conv2D", *["IntegerConv2D"] * 4]
    ranges = [np.asarray(layer.input_range) for layer in model.layers if isinstance(layer, IntegerConv2D)]
    # The epoch's last weights carry the ranges that calibration on them gives.
    calibrated = keras.models.clone_model(model)
    calibrated.set_weights(model.get_weights())
    for layer in calibrated.layers:
        if isinstance(layer, IntegerConv2D):
            layer.input_range.assign(np.zeros(2, np.float32))
    calibrate_ranges(calibrated, conversion_samples(config.train_dir, channels=3, sigma_range=config.sigma_range))
    expected = [np.asarray(layer.input_range) for layer in calibrated.layers if isinstance(layer, IntegerConv2D)]
    np.testing.assert_allclose(np.stack(ranges), np.stack(expected), rtol=1e-5)
    config.epochs = 2
    assert train(config, resume=True, verbose=0)["epoch"] == 2
