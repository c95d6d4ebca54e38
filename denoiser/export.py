"""Conversion of Keras models to LiteRT (.tflite): float32, float16, dynamic-range
int8 and full-integer int8 with a representative set of noisy training patches.

Residual models are exported without their final subtraction: the file outputs
the noise estimate and the runtime subtracts it in float. The noise has a far
smaller range than the image, so an int8 output loses far less there, and the
input passes to the output at full precision.
"""

import tempfile
from pathlib import Path

import numpy as np

from .errors import DenoiserError

VARIANTS = ("float32", "float16", "int8_dynamic", "int8_full")


def noise_branch(model):
    """The sub-model up to the noise estimate, or None for a non-residual model."""
    import keras

    try:
        final = model.get_layer("denoised")
    except ValueError:
        return None
    if not isinstance(final, keras.layers.Subtract):
        return None
    return keras.Model(model.inputs, final.input[1], name=f"{model.name}_noise")


def convert(model, variant, *, tile=256, batch=2, representative=None):
    """Returns (tflite bytes, output kind 'noise' or 'denoised')."""
    import tensorflow as tf

    if variant not in VARIANTS:
        raise DenoiserError(f"unknown variant {variant!r}; choose one of {VARIANTS}")
    branch = noise_branch(model)
    target, output = (branch, "noise") if branch is not None else (model, "denoised")
    channels = model.input_shape[-1]
    spec = tf.TensorSpec([batch, tile, tile, channels], tf.float32)
    with tempfile.TemporaryDirectory() as saved:
        target.export(saved, format="tf_saved_model", input_signature=[spec], verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(saved)
        return _configure(converter, variant, batch, representative).convert(), output


def _configure(converter, variant, batch, representative):
    import tensorflow as tf

    if variant == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif variant == "int8_dynamic":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    elif variant == "int8_full":
        if representative is None:
            raise DenoiserError("full-integer quantization needs representative noisy patches")
        samples = np.asarray(representative, np.float32)

        def dataset():
            for first in range(0, len(samples) - batch + 1, batch):
                yield [samples[first : first + batch]]

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = dataset
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    return converter


def representative_patches(clean_patches, *, tile, count=32, sigma_range=(0.0, 55.0), rng):
    """Noisy tiles for calibration, cut from clean training images (never test images)."""
    picks = []
    for _ in range(count):
        image = clean_patches[rng.integers(len(clean_patches))]
        h, w = image.shape[:2]
        if min(h, w) < tile:
            image = np.pad(image, [(0, max(0, tile - h)), (0, max(0, tile - w)), (0, 0)], mode="reflect")
            h, w = image.shape[:2]
        y, x = rng.integers(0, h - tile + 1), rng.integers(0, w - tile + 1)
        clean = image[y : y + tile, x : x + tile]
        sigma = rng.uniform(*sigma_range)
        picks.append(clean + rng.standard_normal(clean.shape).astype(np.float32) * sigma / 255.0)
    return np.stack(picks).astype(np.float32)


def calibration_set(train_dir, *, channels, tile, count, sigma_range=(0.0, 55.0), rng, images=64):
    """Noisy tiles for full-integer calibration from the first clean training images.

    Crops are as large as the tile where the images allow; smaller images (gray400's
    are 180x180) give smaller crops, which `representative_patches` reflects to size.
    """
    from PIL import Image

    from .data import extract_patches, list_images

    files = list_images(train_dir)[:images]
    # The sizes come from the file headers; extract_patches decodes each image once.
    sizes = []
    for path in files:
        with Image.open(path) as image:
            sizes.append(min(image.size))
    side = min(tile, *sizes)
    clean = extract_patches(files, channels=channels, patch_size=side, stride=side, scales=(1.0,))
    return representative_patches(clean.astype(np.float32) / 255.0, tile=tile, count=count,
                                  sigma_range=sigma_range, rng=rng)


def export_file(model, path, variant, **options):
    data, output = convert(model, variant, **options)
    path = Path(path)
    path.write_bytes(data)
    return path, output
