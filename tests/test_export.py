import keras
import numpy as np
import pytest

from denoiser.training.export import convert, equalize_activations, noise_branch
from denoiser.runtimes import LiteRTRuntime

TILE, BATCH = 32, 2
EXCEEDING = 1e-2  # high enough that a channel's range is not just its maximum


@pytest.fixture(scope="module")
def samples():
    rng = np.random.default_rng(0)
    clean = rng.random((4, TILE, TILE, 3)).astype(np.float32)
    return clean + rng.standard_normal(clean.shape).astype(np.float32) * 0.1


def relu_ranges(model, samples):
    relus = [layer for layer in model.layers if isinstance(layer, keras.layers.ReLU)]
    outputs = keras.Model(model.inputs, [layer.output for layer in relus]).predict(samples, verbose=0)
    return [np.sort(o.reshape(-1, o.shape[-1]), axis=0)[-round(o.size // o.shape[-1] * EXCEEDING)] for o in outputs]


def spread(ranges):
    alive = ranges[ranges > 1e-3 * ranges.max()]
    return alive.max() / alive.min()


def test_equalizing_keeps_the_function_and_evens_every_relu(tiny_dncnn, samples):
    branch = noise_branch(tiny_dncnn)
    equalized = equalize_activations(branch, samples, exceeding=EXCEEDING, batch=1)
    np.testing.assert_allclose(equalized.predict(samples, verbose=0), branch.predict(samples, verbose=0), atol=1e-5)
    before, after = relu_ranges(branch, samples), relu_ranges(equalized, samples)
    assert len(before) == 4
    for old, new in zip(before, after):
        # power 0.5: each channel moves halfway (in log scale) towards the widest one
        assert spread(new) == pytest.approx(np.sqrt(spread(old)), rel=1e-3)


def test_a_relu_whose_input_feeds_another_layer_is_left_alone(samples):
    noisy = keras.Input((None, None, 3))
    made = keras.layers.Conv2D(4, 3, padding="same")(noisy)
    hidden = keras.layers.ReLU()(made)
    # `made` also reaches the output unrectified: rescaling its channels would change the result.
    output = keras.layers.Add()([keras.layers.Conv2D(3, 3, padding="same")(hidden),
                                 keras.layers.Conv2D(3, 1)(made)])
    model = keras.Model(noisy, output)
    kernel, bias = model.layers[1].get_weights()
    model.layers[1].set_weights([kernel * np.array([1, 10, 0.1, 0.01], np.float32), bias])
    equalized = equalize_activations(model, samples)
    np.testing.assert_allclose(equalized.predict(samples, verbose=0), model.predict(samples, verbose=0), atol=1e-6)
    assert [w.tolist() for w in equalized.get_weights()] == [w.tolist() for w in model.get_weights()]


def int8_error(model, samples, tmp_path, *, equalize):
    data, output = convert(model, "int8_full", tile=TILE, batch=BATCH, representative=samples, equalize=equalize)
    path = tmp_path / f"equalize_{equalize}.tflite"
    path.write_bytes(data)
    runtime = LiteRTRuntime(path, margin=0, output=output)
    return float(np.mean(np.abs(runtime.predict(samples[:BATCH]) - model.predict(samples[:BATCH], verbose=0))))


def test_equalizing_recovers_int8_precision_lost_to_uneven_channels(tiny_dncnn, samples, tmp_path):
    """The same function with its first ReLU's channels spread over 1e-2..1 quantizes far better equalized."""
    skewed = keras.models.clone_model(tiny_dncnn)
    skewed.set_weights(tiny_dncnn.get_weights())
    scale = np.logspace(-2, 0, 8).astype(np.float32)
    kernel, bias = skewed.get_layer("conv_in").get_weights()
    skewed.get_layer("conv_in").set_weights([kernel * scale, bias * scale])
    kernel = skewed.get_layer("conv_1").get_weights()[0]
    skewed.get_layer("conv_1").set_weights([kernel / scale[None, None, :, None]])
    np.testing.assert_allclose(skewed.predict(samples, verbose=0), tiny_dncnn.predict(samples, verbose=0), atol=1e-4)
    plain = int8_error(skewed, samples, tmp_path, equalize=False)
    assert int8_error(skewed, samples, tmp_path, equalize=True) < plain / 2


def test_the_unet_converts_to_a_litert_file_that_takes_tiles_of_any_shape(tmp_path):
    from support import randomize
    from denoiser.architectures.graph import input_multiple, receptive_radius
    from denoiser.architectures.registry import build_model
    from denoiser.engine import denoise
    from denoiser.runtimes import KerasRuntime
    from denoiser.training.export import export_file, resizable

    model = randomize(build_model("unet", 3, level_map=True, width=4, blocks=(1, 1, 1)))
    x = np.random.default_rng(0).random((2, 40, 56, 4)).astype(np.float32)
    # The rewrite for LiteRT computes the same function on inputs of the stride's multiple.
    np.testing.assert_allclose(resizable(model).predict_on_batch(x), model.predict_on_batch(x), atol=1e-5)
    path, output = export_file(model, tmp_path / "unet.tflite", "float32", tile=64, batch=1)
    assert input_multiple(model) == 8
    runtime = LiteRTRuntime(path, output=output, margin=receptive_radius(model), multiple=input_multiple(model))
    for shape in [(64, 64), (50, 44), (9, 130)]:
        tiles = np.random.default_rng(1).random((2, *shape, 4)).astype(np.float32)
        np.testing.assert_allclose(runtime.predict(tiles), model.predict_on_batch(tiles), atol=1e-5)
    # The engine cuts the same tiles for both; each is padded alike.
    image = np.random.default_rng(2).random((150, 100, 3)).astype(np.float32)
    np.testing.assert_allclose(denoise(image, runtime, level=5.0, tile=96),
                               denoise(image, KerasRuntime(model, tile=96), level=5.0), atol=1e-4)
