import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from support import randomize

from denoiser.architectures.registry import build_model
from denoiser.errors import DenoiserError
from denoiser.training.export import _equalizable, convert, noise_branch
from denoiser.architectures.quantized import QuantizedConv2D, quantize_input
from denoiser.training.qat import quantization_aware, strip_quantization
from denoiser.runtimes import LiteRTRuntime

TILE, BATCH = 32, 2
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def dncnn():
    # 16 features: 2,304-element kernels, which the converter quantizes; the
    # 3-channel first and last kernels (432 elements) it leaves in float.
    return randomize(build_model("dncnn", 3, depth=4, features=16), seed=3)


@pytest.fixture(scope="module")
def noisy():
    rng = np.random.default_rng(0)
    clean = rng.random((BATCH, TILE, TILE, 3)).astype(np.float32)
    return clean + rng.standard_normal(clean.shape).astype(np.float32) * 0.1


def test_folding_batch_norm_keeps_the_function(dncnn, noisy):
    aware = quantization_aware(dncnn)
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in aware.layers)
    assert sum(isinstance(layer, QuantizedConv2D) for layer in aware.layers) == 4
    plain = strip_quantization(aware)
    assert not any(isinstance(layer, QuantizedConv2D) for layer in plain.layers)
    np.testing.assert_allclose(plain.predict(noisy, verbose=0), dncnn.predict(noisy, verbose=0), atol=1e-5)


def assert_emulates_its_export(aware, float_model, noisy, path, variant, representative=None):
    """The quantization-aware model computes what its LiteRT export computes, to within a
    tenth of the error the rounding makes; returns what it computes."""
    data, output = convert(aware, variant, tile=TILE, batch=BATCH, representative=representative)
    path.write_bytes(data)
    litert = LiteRTRuntime(path, margin=4, output=output).predict(noisy)
    emulated = aware.predict(noisy, verbose=0)
    rounding = np.abs(litert - float_model.predict(noisy, verbose=0)).mean()
    assert rounding > 1e-4  # the int8 model does round
    assert np.abs(litert - emulated).mean() < 0.1 * rounding
    return emulated


def test_the_rounding_is_what_the_dynamic_range_model_computes(dncnn, noisy, tmp_path):
    assert_emulates_its_export(quantization_aware(dncnn), dncnn, noisy, tmp_path / "int8.tflite", "int8_dynamic")


def test_input_rounding_uses_256_levels_per_image_and_passes_gradients_straight_through():
    x = tf.constant(np.stack([np.linspace(0, 1, 1000), np.linspace(-2, 6, 1000)]).reshape(2, 10, 100, 1), tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(x)
        rounded = quantize_input(x)
        total = tf.reduce_sum(rounded * tf.reshape(tf.range(1000, dtype=tf.float32), (1, 10, 100, 1)) / 1000)
    values = np.asarray(rounded)
    assert len(np.unique(values[0])) == 256 and len(np.unique(values[1])) == 256
    assert np.abs(values[0] - np.asarray(x[0])).max() <= 0.5 / 255 + 1e-6
    assert np.abs(values[1] - np.asarray(x[1])).max() <= 0.5 * 8 / 255 + 1e-6
    np.testing.assert_allclose(np.asarray(tape.gradient(total, x)).reshape(2, 1000),
                               np.tile(np.arange(1000) / 1000, (2, 1)), atol=1e-6)


def test_quantization_aware_model_round_trips_through_keras_files(dncnn, noisy, tmp_path):
    aware = quantization_aware(dncnn)
    aware.save(tmp_path / "aware.keras")
    loaded = keras.models.load_model(tmp_path / "aware.keras")
    assert [type(layer) for layer in loaded.layers] == [type(layer) for layer in aware.layers]
    np.testing.assert_array_equal(loaded.predict(noisy, verbose=0), aware.predict(noisy, verbose=0))


@pytest.mark.slow
def test_the_catalog_loads_a_quantization_aware_model_in_a_fresh_process(dncnn, tmp_path):
    # In a fresh process nothing has imported denoiser.training.qat, which registers the layer.
    import subprocess
    import sys

    quantization_aware(dncnn).save(tmp_path / "aware.keras")
    code = ("import sys; from denoiser.catalog import load_keras_model; "
            "print(type(load_keras_model(sys.argv[1]).get_layer('conv_1')).__name__)")
    result = subprocess.run([sys.executable, "-c", code, str(tmp_path / "aware.keras")], capture_output=True,
                            text=True, cwd=ROOT, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert result.stdout.strip() == "QuantizedConv2D", result.stderr[-2000:]


def test_equalization_sees_through_folded_batch_norm(dncnn):
    folded = strip_quantization(noise_branch(quantization_aware(dncnn)))
    assert len(_equalizable(folded)) == len(_equalizable(noise_branch(dncnn))) == 3


def test_convolutions_inside_custom_layers_are_refused():
    with pytest.raises(DenoiserError, match="eam_0"):
        quantization_aware(build_model("ridnet", 3, features=8, blocks=1, reduction=4))


def test_image_facing_convolutions_stay_float_in_dynamic_range_int8(noisy, tmp_path):
    from ai_edge_litert.interpreter import Interpreter

    from denoiser.training.export import image_convolutions_in_float

    # 40 features: the 3x3x3x40 first and 3x3x40x3 last kernels (1,080 elements)
    # are over the converter's limit, so it would round them.
    model = randomize(build_model("dncnn", 3, depth=3, features=40), seed=4)
    branch = noise_branch(model)
    sliced = image_convolutions_in_float(branch)
    np.testing.assert_allclose(sliced.predict(noisy, verbose=0), branch.predict(noisy, verbose=0), atol=1e-5)
    assert sorted(layer.slice_axis for layer in sliced.layers if hasattr(layer, "slice_axis")) == ["filters", "inputs"]
    sliced.save(tmp_path / "sliced.keras")
    np.testing.assert_array_equal(keras.models.load_model(tmp_path / "sliced.keras").predict(noisy, verbose=0),
                                  sliced.predict(noisy, verbose=0))
    path = tmp_path / "int8.tflite"
    path.write_bytes(convert(model, "int8_dynamic", tile=TILE, batch=BATCH)[0])
    kernels = [t for t in Interpreter(model_path=str(path)).get_tensor_details()
               if len(t["shape"]) == 4 and tuple(t["shape"][1:3]) == (3, 3)]
    image_facing = [t["dtype"] for t in kernels if min(t["shape"][0], t["shape"][3]) <= 4]
    middle = [t["dtype"] for t in kernels if min(t["shape"][0], t["shape"][3]) > 4]
    assert len(image_facing) == 4 and set(image_facing) == {np.float32}
    assert middle == [np.int8]


def test_the_full_integer_rounding_is_what_the_full_integer_model_computes(dncnn, noisy, tmp_path):
    from ai_edge_litert.interpreter import Interpreter

    from denoiser.architectures.quantized import IntegerConv2D
    from denoiser.training.qat import calibrate_ranges

    rng = np.random.default_rng(1)
    samples = (rng.random((8, TILE, TILE, 3)) + rng.standard_normal((8, TILE, TILE, 3)) * 0.1).astype(np.float32)
    aware = calibrate_ranges(quantization_aware(dncnn, full_integer=True), samples)
    # The first convolution reads the float image and stays float; the last computes the
    # float noise estimate from the int8 tensor it reads.
    assert type(aware.get_layer("conv_in")) is keras.layers.Conv2D
    integer = [layer for layer in aware.layers if isinstance(layer, IntegerConv2D)]
    assert [layer.float_kernel for layer in integer] == [False, False, True]
    # The ranges are those of the float model's ReLU outputs, which start at zero.
    assert all(float(layer.input_range[0]) == 0.0 < float(layer.input_range[1]) for layer in integer)
    emulated = assert_emulates_its_export(aware, dncnn, noisy, tmp_path / "int8_full.tflite", "int8_full", samples)
    interpreter = Interpreter(model_path=str(tmp_path / "int8_full.tflite"))
    kernels = [t for t in interpreter.get_tensor_details() if len(t["shape"]) == 4 and tuple(t["shape"][1:3]) == (3, 3)]
    assert sorted((min(t["shape"][0], t["shape"][3]) <= 4, t["dtype"].__name__) for t in kernels) == [
        (False, "int8"), (False, "int8"), (True, "float32"), (True, "float32")]
    assert interpreter.get_input_details()[0]["dtype"] == interpreter.get_output_details()[0]["dtype"] == np.float32
    aware.save(tmp_path / "aware.keras")
    np.testing.assert_array_equal(keras.models.load_model(tmp_path / "aware.keras").predict(noisy, verbose=0), emulated)


def test_clipped_activations_keep_the_function_below_the_clip_and_export_as_they_emulate(dncnn, noisy, tmp_path):
    from denoiser.training.export import clip_activations
    from denoiser.training.qat import calibrate_ranges

    rng = np.random.default_rng(2)
    samples = (rng.random((8, TILE, TILE, 3)) + rng.standard_normal((8, TILE, TILE, 3)) * 0.1).astype(np.float32)
    clipped = clip_activations(dncnn, samples, exceeding=1e-2)
    relu6 = [layer for layer in clipped.layers if isinstance(layer, keras.layers.Activation)]
    assert len(relu6) == 3 and {layer.get_config()["activation"] for layer in relu6} == {"relu6"}
    # A fraction 1e-2 of each ReLU's values clip: the output moves, a little.
    change = np.abs(clipped.predict(samples, verbose=0) - dncnn.predict(samples, verbose=0))
    assert 0 < change.mean() < 0.1 * np.abs(dncnn.predict(samples, verbose=0) - samples).mean()
    unclipped = clip_activations(dncnn, samples, exceeding=1e-9)  # clips nothing: the same function
    np.testing.assert_allclose(unclipped.predict(samples, verbose=0), dncnn.predict(samples, verbose=0), atol=1e-4)
    # The converter fuses each ReLU6 into its convolution, so the model rounds as it emulates.
    aware = calibrate_ranges(quantization_aware(clipped, full_integer=True), samples)
    assert all(0 < float(layer.input_range[1]) <= 6.0 for layer in aware.layers if hasattr(layer, "input_range"))
    assert_emulates_its_export(aware, clipped, noisy, tmp_path / "clipped.tflite", "int8_full", samples)


def test_full_integer_training_refuses_models_that_merge_tensors():
    with pytest.raises(DenoiserError, match="chains of convolutions"):
        quantization_aware(build_model("unet", 3, width=8, blocks=(1, 1)), full_integer=True)
