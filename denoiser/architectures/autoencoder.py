"""Convolutional denoising autoencoder, the baseline of the source articles
(after Vincent et al., "Extracting and Composing Robust Features with Denoising
Autoencoders", ICML 2008, in its convolutional form).

Two stride-2 stages down and two up; inputs of any size are padded to a multiple
of four inside the network and cropped back, so every height and width works. The
way up is two 2x2 transposed convolutions of stride 2 (the articles use 3x3): LiteRT
can resize those once the exporter writes them as sub-pixel convolutions
(`export.resizable`), and a 3x3 one keeps its output shape fixed.
"""

import keras
from keras import layers

from .layers import PadToMultiple, CropLike


def build_autoencoder(channels=3, features=32, name="autoencoder"):
    """The convolutional denoising autoencoder: two strided convolutions down, two 2x2
    transposed ones up, a sigmoid image out. Raises ValueError for `channels` not 1 or 3."""
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    noisy = keras.Input(shape=(None, None, channels), name="noisy")
    x = PadToMultiple(multiple=4, name="pad")(noisy)
    x = layers.Conv2D(features, 3, padding="same", activation="relu", name="enc_1")(x)
    x = layers.Conv2D(features, 3, strides=2, padding="same", activation="relu", name="down_1")(x)
    x = layers.Conv2D(2 * features, 3, strides=2, padding="same", activation="relu", name="down_2")(x)
    x = layers.Conv2DTranspose(features, 2, strides=2, padding="same", activation="relu", name="up_1")(x)
    x = layers.Conv2DTranspose(features, 2, strides=2, padding="same", activation="relu", name="up_2")(x)
    x = layers.Conv2D(channels, 3, padding="same", activation="sigmoid", name="dec_out")(x)
    denoised = CropLike(name="denoised")([x, noisy])
    return keras.Model(noisy, denoised, name=name)
