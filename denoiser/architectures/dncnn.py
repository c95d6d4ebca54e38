"""DnCNN: Zhang et al., "Beyond a Gaussian Denoiser: Residual Learning of Deep CNN
for Image Denoising", IEEE TIP 2017.

The network predicts the noise; the output is the noisy input minus that prediction.
With `level_map`, it also reads a noise-level map as FFDNet does, which is how the
real-photo models take their strength.
"""

import keras
from keras import layers

from .layers import FULL_PRECISION, image_and_level_input


def build_dncnn(channels=3, depth=17, features=64, level_map=False, name="dncnn"):
    """DnCNN of `depth` 3x3 convolutions that predicts the noise and subtracts it; with
    `level_map`, a noise-level channel follows the image. Raises ValueError for
    `channels` not 1 or 3, or a `depth` under 2."""
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    if depth < 2:
        raise ValueError(f"depth must be at least 2, got {depth}")
    inputs, noisy = image_and_level_input(channels, level_map)
    x = layers.Conv2D(features, 3, padding="same", name="conv_in")(inputs)
    x = layers.ReLU(name="relu_in")(x)
    for i in range(1, depth - 1):
        x = layers.Conv2D(features, 3, padding="same", use_bias=False, name=f"conv_{i}")(x)
        x = layers.BatchNormalization(momentum=0.95, epsilon=1e-4, name=f"bn_{i}")(x)
        x = layers.ReLU(name=f"relu_{i}")(x)
    # A zero last layer makes the untrained network the identity, which
    # shortens the first phase of training considerably.
    noise = layers.Conv2D(channels, 3, padding="same", kernel_initializer="zeros", name="conv_out")(x)
    denoised = layers.Subtract(name="denoised", dtype=FULL_PRECISION)([noisy, noise])
    return keras.Model(inputs, denoised, name=name)
