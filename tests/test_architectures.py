import keras
import numpy as np
import pytest

from support import randomize
from denoiser.architectures import layers as custom
from denoiser.architectures.graph import multiply_adds_per_pixel, receptive_radius
from denoiser.architectures.registry import ARCHITECTURES, build_model, get_architecture
from denoiser.errors import DenoiserError

TINY = {
    "dncnn": {"depth": 4, "features": 8},
    "ridnet": {"features": 8, "blocks": 1, "reduction": 4},
    "autoencoder": {"features": 8},
    "unet": {"width": 4, "blocks": (1, 1, 1)},
}


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
@pytest.mark.parametrize("channels", [1, 3])
def test_any_size_and_channels(name, channels):
    model = build_model(name, channels, **TINY[name])
    for h, w in [(1, 1), (1, 9), (13, 7), (32, 32)]:
        out = model(np.zeros((2, h, w, channels), np.float32))
        assert tuple(out.shape) == (2, h, w, channels)


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_keras_file_round_trip(name, tmp_path):
    model = randomize(build_model(name, 3, **TINY[name]))
    path = tmp_path / f"{name}.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    x = np.random.default_rng(0).random((1, 19, 23, 3)).astype(np.float32)
    expected = model.predict_on_batch(x)
    assert np.abs(expected - x).max() > 1e-3  # the model does something
    np.testing.assert_allclose(loaded.predict_on_batch(x), expected, atol=1e-6)


@pytest.mark.parametrize("layer", [
    custom.PadToMultiple(multiple=8),
    custom.PadToMultiple(multiple=16, mode="symmetric"),
    custom.FeatureAttention(features=12, reduction=3),
    custom.EnhancementAttentionModule(features=12, reduction=3),
])
def test_custom_layer_configs_hold_every_argument(layer):
    rebuilt = type(layer).from_config(layer.get_config())
    assert rebuilt.get_config() == layer.get_config()
    for key in ("multiple", "mode", "features", "reduction"):
        if hasattr(layer, key):
            assert layer.get_config()[key] == getattr(layer, key)


def test_paper_sizes():
    assert build_model("dncnn", 3).count_params() == pytest.approx(558_000, rel=0.01)
    assert build_model("ridnet", 3).count_params() == pytest.approx(1.5e6, rel=0.02)
    assert len([layer for layer in build_model("dncnn", 1).layers if isinstance(layer, keras.layers.Conv2D)]) == 17


def test_untrained_residual_models_start_as_identity():
    x = np.random.default_rng(0).random((1, 16, 16, 3)).astype(np.float32)
    for name in ("dncnn", "ridnet", "unet"):
        np.testing.assert_allclose(build_model(name, 3, **TINY[name]).predict_on_batch(x), x, atol=1e-6)


def test_receptive_radius_of_built_models():
    assert receptive_radius(build_model("dncnn", 3)) == 17
    assert receptive_radius(build_model("dncnn", 3, depth=5)) == 5
    assert receptive_radius(build_model("ridnet", 3, **TINY["ridnet"])) == 14


def test_the_margin_comes_from_the_layers_not_the_models_name():
    def renamed(arch, **options):
        return get_architecture(arch).builder(channels=3, name="renamed", **options)

    assert receptive_radius(renamed("dncnn", depth=5, features=8)) == 5
    assert receptive_radius(renamed("dncnn", depth=5, features=8, level_map=True)) == 5
    assert receptive_radius(renamed("ridnet", **TINY["ridnet"])) == 14
    assert receptive_radius(renamed("autoencoder", features=4)) == 8
    assert receptive_radius(renamed("unet", **TINY["unet"])) == receptive_radius(build_model("unet", 3, **TINY["unet"]))


def test_unet_costs_a_fifth_of_dncnn_and_sees_over_a_hundred_pixels():
    unet, dncnn = build_model("unet", 3, level_map=True), build_model("dncnn", 3, level_map=True)
    assert receptive_radius(unet) > 100
    assert multiply_adds_per_pixel(unet) <= multiply_adds_per_pixel(dncnn) / 5


def test_multiply_adds_count_each_kernel_where_it_runs():
    inputs = keras.Input((None, None, 2))
    x = keras.layers.Conv2D(4, 3, padding="same")(inputs)  # 3*3*2*4 = 72 at every pixel
    x = keras.layers.Conv2D(8, 2, strides=2)(x)  # 2*2*4*8 = 128 at a quarter of them
    x = keras.layers.Conv2DTranspose(4, 2, strides=2)(x)  # 2*2*8*4 = 128 at a quarter
    assert multiply_adds_per_pixel(keras.Model(inputs, x)) == 72 + 32 + 32


def test_symmetric_padding_mirrors_the_edge_and_then_zeros():
    x = np.arange(3, dtype=np.float32).reshape(1, 1, 3, 1)
    padded = custom.PadToMultiple(multiple=8, mode="symmetric")(x)
    np.testing.assert_array_equal(np.asarray(padded)[0, 0, :, 0], [0, 1, 2, 2, 1, 0, 0, 0])
    assert tuple(padded.shape) == (1, 8, 8, 1)


def test_a_layer_of_unknown_reach_is_refused_rather_than_guessed():
    inputs = keras.Input((None, None, 3))
    pooled = keras.layers.AveragePooling2D(3, strides=1, padding="same")(inputs)
    with pytest.raises(DenoiserError, match="how far layer"):
        receptive_radius(keras.Model(inputs, pooled))


def test_every_shipped_keras_model_tiles_with_the_radius_its_manifest_states():
    from denoiser.catalog import MODELS_DIR, load_keras_model, read_manifest

    for name, entry in read_manifest().items():
        if entry["runtime"] == "keras":
            assert receptive_radius(load_keras_model(MODELS_DIR / entry["file"])) == entry["receptive_radius"], name


def test_registry_rejects_unknown_names():
    with pytest.raises(ValueError, match="unknown architecture"):
        get_architecture("transformer")
    with pytest.raises(ValueError):
        build_model("dncnn", 2)
