"""RIDNet: Anwar and Barnes, "Real Image Denoising with Feature Attention", ICCV 2019.

Feature extraction, four enhancement attention modules (EAM), reconstruction, and
a long skip from input to output. The feature attention pools globally, so the
output of a tile depends faintly on the whole tile: tiled inference is close to,
not bit-equal with, whole-image inference.
"""

import keras
from keras import layers

from .layers import FULL_PRECISION, EnhancementAttentionModule, image_and_level_input


def build_ridnet(channels=3, features=64, blocks=4, reduction=16, level_map=False, name="ridnet"):
    """RIDNet: a head convolution, `blocks` enhancement attention modules, a tail that
    predicts the noise; with `level_map`, a noise-level channel follows the image.
    Raises ValueError for `channels` not 1 or 3."""
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    inputs, noisy = image_and_level_input(channels, level_map)
    x = layers.Conv2D(features, 3, padding="same", name="head")(inputs)
    for i in range(blocks):
        x = EnhancementAttentionModule(features, reduction, name=f"eam_{i}")(x)
    # The tail predicts the noise, as DnCNN's last layer does, so that every
    # residual model ends in the same subtraction and exports the same way.
    noise = layers.Conv2D(channels, 3, padding="same", kernel_initializer="zeros", name="tail")(x)
    denoised = layers.Subtract(name="denoised", dtype=FULL_PRECISION)([noisy, noise])
    return keras.Model(inputs, denoised, name=name)
