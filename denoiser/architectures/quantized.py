"""The saved layers that compute what an int8 LiteRT model computes: dynamic range
(`QuantizedConv2D`) or full integer (`IntegerConv2D`).

A dynamic-range int8 convolution rounds its kernel to int8 with one symmetric
scale per output channel, and its input to int8 with one asymmetric scale per
image of the batch, taken from that image's minimum and maximum (Jacob et al.,
"Quantization and Training of Neural Networks for Efficient Integer-Arithmetic-Only
Inference", CVPR 2018, with the rounding of LiteRT's kernels). `QuantizedConv2D`
applies that rounding in its forward pass, with straight-through gradients, so that
quantization-aware fine-tuning (`denoiser.training.qat`) can save and reload it.
`SlicedConv2D` computes a convolution in slices small enough for the converter to
leave in float (`denoiser.training.export`).

A full-integer model rounds every tensor between layers to int8 with one asymmetric
scale per tensor, fixed by calibration: the minimum and maximum that tensor takes
over the representative set, run through the float model. The convolutions that read
or write the image stay float (`denoiser.training.export`), so the image and the
noise estimate are never rounded. `IntegerConv2D` holds the range of its input as a
weight, which `denoiser.training.qat.calibrate_ranges` sets as the converter would.
"""

import keras
import numpy as np
from keras import layers, ops

from .layers import PACKAGE


def _straight_through(x, rounded):
    return x + ops.stop_gradient(rounded - x)


def quantize_kernel(kernel):
    """Symmetric int8 per output channel, levels -127..127, as the converter rounds it."""
    scale = ops.maximum(ops.max(ops.abs(kernel), axis=(0, 1, 2), keepdims=True), 1e-12) / 127.0
    return _straight_through(kernel, ops.clip(ops.round(kernel / scale), -127.0, 127.0) * scale)


def _rounded(x, low, high):
    """`x` on the 256 asymmetric int8 levels over [low, high], a range that holds zero
    (values outside it go to its ends), as LiteRT's kernels round it."""
    scale = ops.maximum(high - low, 1e-12) / 255.0
    zero = ops.round(-128.0 - low / scale)
    levels = ops.clip(ops.round(x / scale) + zero, -128.0, 127.0)
    return (levels - zero) * scale


def quantize_input(x):
    """Asymmetric int8 per image, over a range that holds zero, as the kernels round it."""
    low = ops.minimum(ops.min(x, axis=(1, 2, 3), keepdims=True), 0.0)
    high = ops.maximum(ops.max(x, axis=(1, 2, 3), keepdims=True), 0.0)
    return _straight_through(x, _rounded(x, low, high))


def quantize_tensor(x, value_range):
    """Asymmetric int8 over a calibrated (low, high) range that holds zero, as a
    full-integer model rounds a tensor between layers."""
    low, high = ops.minimum(value_range[0], 0.0), ops.maximum(value_range[1], 0.0)
    # No gradient where the range clips, as TensorFlow's fake quantization does: a value
    # that training pushes past the range would move nothing in the int8 model.
    return _straight_through(ops.clip(x, low, high), _rounded(x, low, high))


# The converter leaves smaller kernels in float (the gray DnCNN's first and last).
MIN_QUANTIZED_ELEMENTS = 1024
# Int8 exports keep convolutions this narrow on either side in float.
IMAGE_CHANNELS = 4


def image_facing(kernel_shape):
    """Whether a (height, width, inputs, outputs) kernel reads or writes an image: a
    tiny share of the work, and the place where rounding costs the most."""
    return min(kernel_shape[2], kernel_shape[3]) <= IMAGE_CHANNELS


def float_slices(kernel_shape):
    """(axis, width) that slice an image-facing kernel the converter would round under
    its limit, or None. A narrow output is sliced along the inputs and summed, so that
    each slice reads its own input channels once; a narrow input along the outputs."""
    height, width, fan_in, filters = kernel_shape
    if height * width * fan_in * filters < MIN_QUANTIZED_ELEMENTS or not image_facing(kernel_shape):
        return None
    axis, other = ("inputs", filters) if filters <= IMAGE_CHANNELS else ("filters", fan_in)
    size = (MIN_QUANTIZED_ELEMENTS - 1) // (height * width * other)
    return (axis, size) if size >= 1 else None


def rounded_in_export(kernel_shape):
    """Whether the exported dynamic-range model rounds a kernel of this shape, and its input."""
    return int(np.prod(kernel_shape)) >= MIN_QUANTIZED_ELEMENTS and float_slices(kernel_shape) is None


@keras.saving.register_keras_serializable(package=PACKAGE)
class QuantizedConv2D(layers.Conv2D):
    """A Conv2D that computes what its dynamic-range int8 export computes.

    It takes the same arguments as Conv2D, so `get_config` is Conv2D's.
    """

    def call(self, inputs):
        kernel = self.kernel
        if rounded_in_export(kernel.shape):
            inputs, kernel = quantize_input(inputs), quantize_kernel(kernel)
        outputs = ops.conv(
            inputs, kernel, strides=self.strides, padding=self.padding,
            data_format=self.data_format, dilation_rate=self.dilation_rate,
        )
        if self.use_bias:
            outputs = outputs + self.bias
        return self.activation(outputs)


@keras.saving.register_keras_serializable(package=PACKAGE)
class SlicedConv2D(layers.Conv2D):
    """A Conv2D computed `slice_width` channels at a time: output channels
    concatenated (`slice_axis` "filters") or input channels summed ("inputs")."""

    def __init__(self, *args, slice_width=1, slice_axis="filters", **kwargs):
        super().__init__(*args, **kwargs)
        if slice_axis not in ("filters", "inputs"):
            raise ValueError(f"slice_axis must be 'filters' or 'inputs', got {slice_axis!r}")
        self.slice_width = int(slice_width)
        self.slice_axis = slice_axis

    def _conv(self, inputs, kernel):
        return ops.conv(inputs, kernel, strides=self.strides, padding=self.padding,
                        data_format=self.data_format, dilation_rate=self.dilation_rate)

    def call(self, inputs):
        if self.slice_axis == "inputs":
            parts = [self._conv(inputs[..., first : first + self.slice_width],
                                self.kernel[:, :, first : first + self.slice_width])
                     for first in range(0, self.kernel.shape[2], self.slice_width)]
            outputs = parts[0]
            for part in parts[1:]:
                outputs = outputs + part
        else:
            outputs = ops.concatenate([self._conv(inputs, self.kernel[..., first : first + self.slice_width])
                                       for first in range(0, self.filters, self.slice_width)], axis=-1)
        if self.use_bias:
            outputs = outputs + self.bias
        return self.activation(outputs)

    def get_config(self):
        return {**super().get_config(), "slice_width": self.slice_width, "slice_axis": self.slice_axis}


@keras.saving.register_keras_serializable(package=PACKAGE)
class IntegerConv2D(layers.Conv2D):
    """A Conv2D that computes what its full-integer int8 export computes: its input
    rounded over `input_range` (a weight that calibration sets, not trained), and its
    kernel per output channel, unless `float_kernel` (a convolution that writes the
    image, which the export computes in float from the int8 tensor it reads)."""

    def __init__(self, *args, float_kernel=False, **kwargs):
        super().__init__(*args, **kwargs)
        self.float_kernel = bool(float_kernel)

    def build(self, input_shape):
        super().build(input_shape)
        self.input_range = self.add_weight(shape=(2,), initializer="zeros", trainable=False, name="input_range")

    def call(self, inputs):
        kernel = self.kernel if self.float_kernel else quantize_kernel(self.kernel)
        outputs = ops.conv(
            quantize_tensor(inputs, self.input_range), kernel, strides=self.strides,
            padding=self.padding, data_format=self.data_format, dilation_rate=self.dilation_rate,
        )
        if self.use_bias:
            outputs = outputs + self.bias
        return self.activation(outputs)

    def get_config(self):
        return {**super().get_config(), "float_kernel": self.float_kernel}

    # Conv2D saves its kernel and bias alone; the range is a variable of the model too.
    def save_own_variables(self, store):
        layers.Layer.save_own_variables(self, store)

    def load_own_variables(self, store):
        layers.Layer.load_own_variables(self, store)
