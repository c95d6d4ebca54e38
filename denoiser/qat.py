"""Quantization-aware fine-tuning for dynamic-range int8: Jacob et al., "Quantization
and Training of Neural Networks for Efficient Integer-Arithmetic-Only Inference",
CVPR 2018, with the rounding that LiteRT's dynamic-range kernels apply.

A dynamic-range int8 convolution rounds its kernel to int8 with one symmetric
scale per output channel, and its input to int8 with one asymmetric scale per
image of the batch, taken from that image's minimum and maximum. The colour
DnCNN loses about 0.25 dB to that rounding, mostly in its middle layers, so a
float model cannot simply be converted. `quantization_aware` folds batch norm
into the convolutions, as the converter does, and replaces each Conv2D by a
`QuantizedConv2D` that applies the same rounding in the forward pass and lets
gradients through unchanged (the straight-through estimator). Fine-tuning that
model teaches the weights to live with the rounding; `strip_quantization` gives
back plain Conv2D layers for export.

At export, `image_convolutions_in_float` keeps the convolutions that read or write
the image out of that rounding, as the converter already does for small kernels.
"""

import keras
import numpy as np
from keras import layers, ops

from .architectures.layers import PACKAGE
from .errors import DenoiserError


def _straight_through(x, rounded):
    return x + ops.stop_gradient(rounded - x)


def quantize_kernel(kernel):
    """Symmetric int8 per output channel, levels -127..127, as the converter rounds it."""
    scale = ops.maximum(ops.max(ops.abs(kernel), axis=(0, 1, 2), keepdims=True), 1e-12) / 127.0
    return _straight_through(kernel, ops.clip(ops.round(kernel / scale), -127.0, 127.0) * scale)


def quantize_input(x):
    """Asymmetric int8 per image, over a range that holds zero, as the kernels round it."""
    low = ops.minimum(ops.min(x, axis=(1, 2, 3), keepdims=True), 0.0)
    high = ops.maximum(ops.max(x, axis=(1, 2, 3), keepdims=True), 0.0)
    scale = ops.maximum(high - low, 1e-12) / 255.0
    zero = ops.round(-128.0 - low / scale)
    levels = ops.clip(ops.round(x / scale) + zero, -128.0, 127.0)
    return _straight_through(x, (levels - zero) * scale)


# The converter leaves smaller kernels in float (the gray DnCNN's first and last).
MIN_QUANTIZED_ELEMENTS = 1024
# `image_convolutions_in_float` keeps convolutions this narrow on either side in float.
IMAGE_CHANNELS = 4


def _float_slices(kernel_shape):
    """(axis, width) that slice an image-facing kernel the converter would round under
    its limit, or None. A narrow output is sliced along the inputs and summed, so that
    each slice reads its own input channels once; a narrow input along the outputs."""
    height, width, fan_in, filters = kernel_shape
    if height * width * fan_in * filters < MIN_QUANTIZED_ELEMENTS or min(fan_in, filters) > IMAGE_CHANNELS:
        return None
    axis, other = ("inputs", filters) if filters <= IMAGE_CHANNELS else ("filters", fan_in)
    size = (MIN_QUANTIZED_ELEMENTS - 1) // (height * width * other)
    return (axis, size) if size >= 1 else None


def rounded_in_export(kernel_shape):
    """Whether the exported dynamic-range model rounds a kernel of this shape, and its input."""
    return int(np.prod(kernel_shape)) >= MIN_QUANTIZED_ELEMENTS and _float_slices(kernel_shape) is None


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


def _clone(model, replace, **options):
    """A copy of `model`'s graph, unweighted, with `replace(layer)` standing in for
    each layer where it returns one and a fresh layer of the same kind elsewhere."""

    def clone(layer):
        replacement = replace(layer)
        return layer.__class__.from_config(layer.get_config()) if replacement is None else replacement

    return keras.models.clone_model(model, clone_function=clone, **options)


def _foldable(model):
    """{batch norm name: conv name} where a batch norm reads a linear Conv2D that feeds nothing else."""
    from .export import layer_graph

    producers, consumers = layer_graph(model)
    pairs = {}
    for layer in model.layers:
        if not isinstance(layer, layers.BatchNormalization):
            continue
        before = producers.get(layer.name)
        if not before or len(before) != 1:
            continue
        conv = model.get_layer(before[0])
        if (type(conv) in (layers.Conv2D, QuantizedConv2D) and consumers[conv.name] == [layer.name]
                and conv.get_config()["activation"] == "linear" and layer.axis in (-1, 3)):
            pairs[layer.name] = conv.name
    return pairs


def quantization_aware(model):
    """A copy of `model` that rounds as dynamic-range int8 does, for fine-tuning.

    Batch norm that follows a convolution is folded into it (its layer becomes
    an Identity, so that the names stay), and every Conv2D becomes a
    QuantizedConv2D with a bias. Only functional models of built-in layers
    qualify: a convolution inside a custom layer would be left in float.
    """
    folded = _foldable(model)
    convs = set(folded.values())
    nested = [layer.name for layer in model.layers
              if not isinstance(layer, layers.Conv2D)
              and any(isinstance(inner, layers.Conv2D) for inner in layer._flatten_layers(include_self=False))]
    if nested:
        raise DenoiserError(f"quantization-aware training reaches only top-level Conv2D layers; "
                            f"{', '.join(nested)} hold convolutions of their own")
    grouped = [layer.name for layer in model.layers if isinstance(layer, layers.Conv2D) and layer.groups != 1]
    if grouped:
        raise DenoiserError(f"quantization-aware training takes ungrouped convolutions only, not {', '.join(grouped)}")

    def replace(layer):
        if layer.name in folded:
            return layers.Identity(name=layer.name)
        if isinstance(layer, layers.Conv2D):
            return QuantizedConv2D.from_config({**layer.get_config(), "use_bias": layer.use_bias or layer.name in convs})
        return None

    def call(layer, *args, **kwargs):
        # The Identity takes the tensor alone, not the batch norm's mask and training flags.
        return layer(args[0]) if isinstance(layer, layers.Identity) else layer(*args, **kwargs)

    aware = _clone(model, replace, call_function=call)
    for layer in model.layers:
        if layer.weights and layer.name not in folded and layer.name not in convs:
            aware.get_layer(layer.name).set_weights(layer.get_weights())
    for norm_name, conv_name in folded.items():
        norm, conv = model.get_layer(norm_name), model.get_layer(conv_name)
        kernel = np.asarray(conv.kernel)
        bias = np.asarray(conv.bias) if conv.use_bias else np.zeros(kernel.shape[-1], np.float32)
        gain = 1.0 / np.sqrt(np.asarray(norm.moving_variance) + norm.epsilon)
        if norm.scale:
            gain = gain * np.asarray(norm.gamma)
        shift = np.asarray(norm.beta) if norm.center else 0.0
        aware.get_layer(conv_name).set_weights(
            [(kernel * gain).astype(np.float32), ((bias - np.asarray(norm.moving_mean)) * gain + shift).astype(np.float32)]
        )
    return aware


def strip_quantization(model):
    """`model` with each QuantizedConv2D back as a plain Conv2D of the same weights."""
    if not any(isinstance(layer, QuantizedConv2D) for layer in model.layers):
        return model

    def replace(layer):
        return layers.Conv2D.from_config(layer.get_config()) if isinstance(layer, QuantizedConv2D) else None

    plain = _clone(model, replace)
    plain.set_weights(model.get_weights())
    return plain


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


def image_convolutions_in_float(model):
    """`model` with its image-facing convolutions computed in slices that stay float.

    Dynamic-range conversion leaves a kernel in float only when it has fewer than
    MIN_QUANTIZED_ELEMENTS: the gray DnCNN's first and last (3x3x1x64) stay float,
    the colour model's (3x3x3x64) are rounded, input and all. A convolution that
    reads or writes at most 4 channels, a tiny share of the work, is split into
    slices under that size; the function stays the same.
    """

    def slices(layer):
        if type(layer) is not layers.Conv2D or layer.groups != 1:
            return None
        return _float_slices(tuple(layer.kernel.shape))

    plans = {layer.name: plan for layer in model.layers if (plan := slices(layer))}
    if not plans:
        return model

    def replace(layer):
        if layer.name not in plans:
            return None
        axis, width = plans[layer.name]
        return SlicedConv2D.from_config({**layer.get_config(), "slice_width": width, "slice_axis": axis})

    sliced = _clone(model, replace)
    sliced.set_weights(model.get_weights())
    return sliced
