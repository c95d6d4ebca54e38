"""The JAX training path, which GPU machines without TensorFlow use. Keras picks
its backend once per process, so the training itself runs in a subprocess."""

import csv
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import numpy as np
import pytest

from denoiser.training import data
from denoiser.training.jax_training import dihedral, draw_batch

pytestmark = pytest.mark.slow  # see pyproject.toml

ROOT = Path(__file__).resolve().parents[1]


def test_device_batches_have_the_requested_noise_and_depend_only_on_the_key():
    patches = np.full((20, 32, 32, 1), 128, np.uint8)
    noisy, clean = draw_batch(jax.random.key(3), patches, batch_size=16, sigma_range=(25.0, 25.0))
    assert np.allclose(np.asarray(clean), 128 / 255)
    assert abs(float(np.std(np.asarray(noisy - clean))) * 255 - 25) < 0.5
    again, _ = draw_batch(jax.random.key(3), patches, batch_size=16, sigma_range=(25.0, 25.0))
    other, _ = draw_batch(jax.random.key(4), patches, batch_size=16, sigma_range=(25.0, 25.0))
    assert np.array_equal(np.asarray(noisy), np.asarray(again)) and not np.array_equal(np.asarray(noisy), np.asarray(other))


def test_device_augmentation_is_the_host_augmentation(rng):
    patch = rng.integers(0, 256, (5, 5, 2), dtype=np.uint8)
    on_device = {np.asarray(dihedral(patch, mode)).tobytes() for mode in range(8)}
    on_host = {data.augment(patch[None], [mode])[0].tobytes() for mode in range(8)}
    assert len(on_device) == 8 and on_device == on_host


TRAIN = textwrap.dedent("""
    import sys
    import numpy as np
    from denoiser.training.config import TrainConfig
    from denoiser.training.train import train
    run, train_dir, epochs, init_from = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    config = TrainConfig(
        arch="dncnn", channels=3, train_dir=train_dir, run_dir=run, patch_size=16, stride=16, scales=(1.0,),
        batch_size=4, steps_per_epoch=3, epochs=epochs, val_fraction=0.2, overrides={"depth": 3, "features": 4},
        init_from=init_from, quantization_aware=bool(init_from), lr=1e-4,
    )
    train(config, resume=epochs > 1, verbose=0)
    import keras
    probe = np.linspace(0, 1, 16 * 16 * 3, dtype=np.float32).reshape(1, 16, 16, 3)
    np.save(f"{run}/probe.npy", keras.models.load_model(f"{run}/last.keras").predict(probe, verbose=0))
""")


def _train_on_jax(run, train_dir, epochs, init_from=""):
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", TRAIN, str(run), str(train_dir), str(epochs), str(init_from)],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]


def test_training_on_jax_resumes_and_its_checkpoint_runs_the_same_in_tensorflow(tmp_path, train_dir):
    import keras

    run = tmp_path / "run"
    _train_on_jax(run, train_dir, 1)
    _train_on_jax(run, train_dir, 2)

    state = json.loads((run / "state.json").read_text())
    assert state["epoch"] == 2 and state["steps"] == 6 and "JAX" in state["device"]
    with open(run / "log.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2] and all(float(r["val_psnr_25"]) > 10 for r in rows)

    assert keras.backend.backend() == "tensorflow"
    model = keras.models.load_model(run / "last.keras")
    probe = np.linspace(0, 1, 16 * 16 * 3, dtype=np.float32).reshape(1, 16, 16, 3)
    np.testing.assert_allclose(model.predict(probe, verbose=0), np.load(run / "probe.npy"), atol=1e-5)


def test_quantization_aware_fine_tuning_runs_on_jax_and_its_checkpoint_rounds_the_same_in_tensorflow(
        tmp_path, train_dir):
    import keras

    from denoiser.architectures.registry import build_model
    from denoiser.architectures.quantized import QuantizedConv2D, rounded_in_export

    # 16 features: the middle kernel (3x3x16x16) is large enough to be rounded.
    start = build_model("dncnn", 3, depth=3, features=16)
    start.save(tmp_path / "start.keras")
    run = tmp_path / "aware"
    _train_on_jax(run, train_dir, 1, init_from=tmp_path / "start.keras")
    _train_on_jax(run, train_dir, 2, init_from=tmp_path / "start.keras")

    state = json.loads((run / "state.json").read_text())
    assert state["epoch"] == 2 and "JAX" in state["device"] and state["config"]["quantization_aware"]
    model = keras.models.load_model(run / "last.keras")
    rounded = [layer for layer in model.layers
               if isinstance(layer, QuantizedConv2D) and rounded_in_export(layer.kernel.shape)]
    assert len(rounded) == 1
    probe = np.linspace(0, 1, 16 * 16 * 3, dtype=np.float32).reshape(1, 16, 16, 3)
    # A float difference between backends can move a value across a rounding
    # boundary, so a few pixels may differ by about one int8 step.
    difference = np.abs(model.predict(probe, verbose=0) - np.load(run / "probe.npy"))
    assert difference.mean() < 1e-5 and difference.max() < 1e-2


DATA_PARALLEL = textwrap.dedent("""
    import json, sys, time
    import jax, keras
    import numpy as np
    from denoiser.architectures.registry import build_model
    from denoiser.training.config import TrainConfig
    from denoiser.training.jax_training import _read, data_parallel, make_step
    from denoiser.training.train import train

    patches = np.random.default_rng(0).integers(0, 256, (64, 24, 24, 3), dtype=np.uint8)

    def steps(distribution, count=10):
        keras.utils.set_random_seed(0)
        model = build_model("dncnn", 3, depth=4, features=8)
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
        model.optimizer.build(model.trainable_variables)
        step = make_step(model, model.optimizer, loss="mse", batch_size=8, sigma_range=(0.0, 55.0),
                         distribution=distribution)
        variables, loss = step(_read(model, model.optimizer), jax.numpy.asarray(patches), jax.random.key(1))
        first = (float(loss), [np.asarray(v).tolist() for v in variables[0]])
        started = time.perf_counter()
        for key in jax.random.split(jax.random.key(2), count):
            variables, loss = step(variables, jax.numpy.asarray(patches), key)
        jax.block_until_ready(loss)
        return first, count / (time.perf_counter() - started)

    (one_loss, one_weights), one_rate = steps(None)
    distribution = data_parallel(8)
    (two_loss, two_weights), two_rate = steps(distribution)
    run, train_dir = sys.argv[1], sys.argv[2]
    config = TrainConfig(arch="dncnn", channels=3, train_dir=train_dir, run_dir=run, patch_size=16, stride=16,
                         scales=(1.0,), batch_size=4, steps_per_epoch=2, epochs=1, val_fraction=0.2,
                         overrides={"depth": 3, "features": 4}, data_parallel=True)
    state = train(config, verbose=0)
    largest = max(float(np.max(np.abs(np.asarray(a) - np.asarray(b)))) for a, b in zip(one_weights, two_weights))
    print(json.dumps({"devices": len(distribution.device_mesh.devices.flatten()), "losses": [one_loss, two_loss],
                      "largest_weight_difference": largest, "steps_per_second": [one_rate, two_rate],
                      "epochs": state["epoch"]}))
""")


def test_data_parallel_training_on_two_devices_equals_one_device(tmp_path, train_dir):
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(ROOT),
           "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    done = subprocess.run([sys.executable, "-c", DATA_PARALLEL, str(tmp_path / "run"), str(train_dir)],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    facts = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"\ndata parallel on {facts['devices']} host devices: steps per second {facts['steps_per_second']}")
    assert facts["devices"] == 2 and facts["epochs"] == 1
    one, two = facts["losses"]
    assert abs(one - two) <= 1e-5 * max(1.0, abs(one)) and facts["largest_weight_difference"] <= 1e-5
