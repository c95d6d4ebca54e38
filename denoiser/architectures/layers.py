"""Custom layers shared by the architectures.

Each is registered for serialization and its `get_config` returns every
constructor argument, so `.keras` files reload without custom_objects.
"""

import keras
from keras import layers, ops

PACKAGE = "denoiser"


def _smaller(a, b):
    # JAX traces with static shapes and wants static padding; TensorFlow may give tensors.
    return min(a, b) if isinstance(a, int) and isinstance(b, int) else ops.minimum(a, b)


@keras.saving.register_keras_serializable(package=PACKAGE)
class PadToMultiple(layers.Layer):
    """Pads height and width at the bottom and right up to a multiple of `multiple`:
    with zeros, or with `mode="symmetric"` by mirroring the edge (a residual denoiser
    then sees image-like content past the border, not a black band)."""

    receptive_radius = 0

    def __init__(self, multiple=4, mode="constant", **kwargs):
        super().__init__(**kwargs)
        self.multiple = int(multiple)
        self.mode = mode

    def call(self, x):
        shape = ops.shape(x)
        pad_h = (-shape[1]) % self.multiple
        pad_w = (-shape[2]) % self.multiple
        if self.mode == "constant":
            return ops.pad(x, [[0, 0], [0, pad_h], [0, pad_w], [0, 0]])
        # A mirror reaches at most the image's own size; an image narrower than the
        # padding (a 1-pixel strip) gets zeros past that.
        mirror_h, mirror_w = _smaller(pad_h, shape[1]), _smaller(pad_w, shape[2])
        x = ops.pad(x, [[0, 0], [0, mirror_h], [0, mirror_w], [0, 0]], mode=self.mode)
        return ops.pad(x, [[0, 0], [0, pad_h - mirror_h], [0, pad_w - mirror_w], [0, 0]])

    def compute_output_shape(self, input_shape):
        def up(n):
            return None if n is None else n + (-n) % self.multiple

        return (input_shape[0], up(input_shape[1]), up(input_shape[2]), input_shape[3])

    def get_config(self):
        return {**super().get_config(), "multiple": self.multiple, "mode": self.mode}


@keras.saving.register_keras_serializable(package=PACKAGE)
class CropLike(layers.Layer):
    """Crops the first input to the height and width of the second."""

    receptive_radius = 0

    def call(self, inputs):
        x, reference = inputs
        shape = ops.shape(reference)
        return x[:, : shape[1], : shape[2], :]

    def compute_output_shape(self, input_shapes):
        x_shape, ref_shape = input_shapes
        return (x_shape[0], ref_shape[1], ref_shape[2], x_shape[3])


# The image and the residual's subtraction stay float32 when a model trains in mixed
# precision: bfloat16 keeps 8 bits of mantissa, one grey level near white.
FULL_PRECISION = "float32"


@keras.saving.register_keras_serializable(package=PACKAGE)
class ChannelSlice(layers.Layer):
    """Channels [start, stop) of the input: the image part of an image-and-level input."""

    receptive_radius = 0

    def __init__(self, start=0, stop=3, **kwargs):
        super().__init__(**kwargs)
        self.start, self.stop = int(start), int(stop)

    def call(self, x):
        return x[..., self.start : self.stop]

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.stop - self.start)

    def get_config(self):
        return {**super().get_config(), "start": self.start, "stop": self.stop}


def image_and_level_input(channels, level_map):
    """The model's input, and the image part of it.

    With `level_map`, the input carries one more channel after the image: the noise
    level at each pixel (the standard deviation on the 0-1 scale), as FFDNet takes
    it (Zhang et al., "FFDNet: Toward a Fast and Flexible Solution for CNN-Based
    Image Denoising", IEEE TIP 2018). The network sees both; the residual is
    subtracted from the image alone.
    """
    if not level_map:
        noisy = keras.Input(shape=(None, None, channels), name="noisy")
        return noisy, noisy
    noisy = keras.Input(shape=(None, None, channels + 1), name="noisy_and_level")
    return noisy, ChannelSlice(0, channels, name="image", dtype=FULL_PRECISION)(noisy)


@keras.saving.register_keras_serializable(package=PACKAGE)
class FeatureAttention(layers.Layer):
    """Channel attention: global average pooling, a bottleneck, and a sigmoid gate."""

    receptive_radius = 0

    def __init__(self, features=64, reduction=16, **kwargs):
        super().__init__(**kwargs)
        self.features = int(features)
        self.reduction = int(reduction)
        self.squeeze = layers.Conv2D(max(1, self.features // self.reduction), 1, activation="relu")
        self.excite = layers.Conv2D(self.features, 1, activation="sigmoid")

    def build(self, input_shape):
        pooled = (input_shape[0], 1, 1, self.features)
        self.squeeze.build(pooled)
        self.excite.build((input_shape[0], 1, 1, max(1, self.features // self.reduction)))

    def call(self, x):
        pooled = ops.mean(x, axis=(1, 2), keepdims=True)
        return x * self.excite(self.squeeze(pooled))

    def get_config(self):
        return {**super().get_config(), "features": self.features, "reduction": self.reduction}


@keras.saving.register_keras_serializable(package=PACKAGE)
class EnhancementAttentionModule(layers.Layer):
    """RIDNet's EAM: merge-and-run unit, residual block, enhanced residual block,
    and feature attention."""

    def __init__(self, features=64, reduction=16, **kwargs):
        super().__init__(**kwargs)
        self.features = int(features)
        self.reduction = int(reduction)

        def conv(size=3, dilation=1, activation="relu"):
            return layers.Conv2D(
                self.features, size, padding="same", dilation_rate=dilation, activation=activation
            )

        self.branch_a = [conv(dilation=1), conv(dilation=2)]
        self.branch_b = [conv(dilation=3), conv(dilation=4)]
        self.merge = conv()
        self.residual = [conv(), conv(activation=None)]
        self.enhanced = [conv(), conv(), conv(size=1, activation=None)]
        self.attention = FeatureAttention(self.features, self.reduction)

    def build(self, input_shape):
        shape = (input_shape[0], input_shape[1], input_shape[2], self.features)
        for layer in self.branch_a + self.branch_b + self.residual + self.enhanced:
            layer.build(shape)
        self.merge.build((*shape[:3], 2 * self.features))
        self.attention.build(shape)

    def call(self, x):
        a, b = x, x
        for layer in self.branch_a:
            a = layer(a)
        for layer in self.branch_b:
            b = layer(b)
        x = x + self.merge(ops.concatenate([a, b], axis=-1))
        y = x
        for layer in self.residual:
            y = layer(y)
        x = ops.relu(x + y)
        y = x
        for layer in self.enhanced:
            y = layer(y)
        x = ops.relu(x + y)
        return self.attention(x)

    @property
    def receptive_radius(self):
        """The longer dilated branch, then the merge, the residual and the enhanced blocks."""
        def reach(convs):
            return sum((conv.kernel_size[0] - 1) // 2 * conv.dilation_rate[0] for conv in convs)

        return (max(reach(self.branch_a), reach(self.branch_b)) + reach([self.merge]) + reach(self.residual)
                + reach(self.enhanced))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "features": self.features, "reduction": self.reduction}
