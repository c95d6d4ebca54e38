"""A U-Net for real photos on CPUs: FFDNet's pixel-unshuffled input (Zhang et al.,
"FFDNet: Toward a Fast and Flexible Solution for CNN-Based Image Denoising", IEEE
TIP 2018) feeding a U-Net (Ronneberger et al., MICCAI 2015) of plain residual blocks,
as NAFNet keeps its blocks plain (Chen et al., "Simple Baselines for Image
Restoration", ECCV 2022).

Camera noise is spatially correlated (demosaicing, JPEG) and its chroma part is
low-frequency, so the network needs a wide view; it gets it from scales, not depth.
Every scale halves the pixels and doubles the features, so a residual block costs
the same 9 * width**2 / 2 multiply-adds per input pixel at every scale. With width
32 and two blocks a scale the network does about 1/8 of the colour DnCNN's
arithmetic per pixel and sees over a hundred pixels away.

The first layer is a 2x2 convolution of stride 2, which is pixel unshuffling
followed by a 1x1 convolution; the last, its transpose. There is no normalisation
and no global pooling: every operation is local, so the network tiles, and every
layer converts to LiteRT's int8 kernels. The input is padded (by mirroring) to a
multiple of the total stride inside the network and the output cropped back, so
any height and width works. Like DnCNN it predicts the noise.
"""

import keras
from keras import layers

from .layers import FULL_PRECISION, CropLike, PadToMultiple, image_and_level_input


def _residual_block(x, features, name):
    # The second convolution starts at zero, so each block starts as the identity:
    # a plain residual stack without normalisation then trains from the first step.
    y = layers.Conv2D(features, 3, padding="same", activation="relu", name=f"{name}_conv1")(x)
    y = layers.Conv2D(features, 3, padding="same", kernel_initializer="zeros", name=f"{name}_conv2")(y)
    return layers.Add(name=f"{name}_add")([x, y])


def _blocks(x, features, count, name):
    for i in range(count):
        x = _residual_block(x, features, f"{name}_{i}")
    return x


def build_unet(channels=3, width=32, blocks=(2, 2, 2, 2), level_map=False, name="unet"):
    """A U-Net over pixel-unshuffled input.

    Parameters
    ----------
    channels : int
        1 or 3, the image's channels.
    width : int
        Features at the first scale (half the input's resolution); each scale doubles them.
    blocks : sequence of int
        Residual blocks at each scale, from the first to the bottom one; the decoder
        repeats the encoder's counts on its way up.
    level_map : bool
        Whether the input carries a noise-level channel after the image (FFDNet).

    Returns
    -------
    keras.Model

    Raises
    ------
    ValueError
        For a channel count other than 1 or 3, or fewer than two scales.
    """
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    blocks = tuple(int(count) for count in blocks)
    if len(blocks) < 2:
        raise ValueError(f"a U-Net needs at least two scales, got blocks={blocks}")
    inputs, noisy = image_and_level_input(channels, level_map)
    x = PadToMultiple(multiple=2 ** len(blocks), mode="symmetric", name="pad")(inputs)
    x = layers.Conv2D(width, 2, strides=2, name="unshuffle")(x)
    skips = []
    for scale, count in enumerate(blocks[:-1]):
        x = _blocks(x, width * 2**scale, count, f"enc{scale}")
        skips.append(x)
        x = layers.Conv2D(width * 2 ** (scale + 1), 2, strides=2, name=f"down{scale}")(x)
    x = _blocks(x, width * 2 ** (len(blocks) - 1), blocks[-1], "middle")
    for scale in reversed(range(len(blocks) - 1)):
        x = layers.Conv2DTranspose(width * 2**scale, 2, strides=2, name=f"up{scale}")(x)
        x = layers.Add(name=f"skip{scale}")([x, skips[scale]])
        x = _blocks(x, width * 2**scale, blocks[scale], f"dec{scale}")
    # Zero at the start, so the untrained network is the identity, as DnCNN's last layer.
    noise = layers.Conv2DTranspose(channels, 2, strides=2, kernel_initializer="zeros", name="shuffle")(x)
    noise = CropLike(name="crop")([noise, noisy])
    denoised = layers.Subtract(name="denoised", dtype=FULL_PRECISION)([noisy, noise])
    return keras.Model(inputs, denoised, name=name)
