"""Quantization-aware fine-tuning for int8: Jacob et al., "Quantization
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

For full-integer int8 (`full_integer=True`) every tensor between layers is int8
too, over one range per tensor that the converter calibrates on the representative
set; the colour DnCNN lost 0.43 dB to that. Each convolution becomes an
`IntegerConv2D` that rounds its input over a calibrated range, with per-channel
kernels. The convolutions that read or write the image stay float, as the export
leaves them (`export.convert`): the first reads the float image, the last computes
the float noise estimate from the int8 tensor it reads. `calibrate_ranges` sets the
ranges as the converter will: the minimum and maximum of each tensor in the float
model of the same weights, over the same representative set. Only chains of
convolutions qualify, where the converter rounds nothing else (a merge of two tensors
has its own range).

The rounding itself lives with the saved layers, `architectures.quantized`, so that
inference can load a fine-tuned model without this workshop.
"""

import keras
import numpy as np
from keras import layers

from ..architectures.graph import clone_with, layer_graph
from ..architectures.quantized import IntegerConv2D, QuantizedConv2D, image_facing
from ..errors import DenoiserError

ROUNDING_LAYERS = (QuantizedConv2D, IntegerConv2D)
# What the converter fuses into a convolution or leaves as it is; anything else in a
# full-integer model would round over a range of its own.
CHAIN_LAYERS = (layers.InputLayer, layers.Conv2D, layers.BatchNormalization, layers.ReLU, layers.Activation,
                layers.Identity)


def _foldable(model):
    """{batch norm name: conv name} where a batch norm reads a linear Conv2D that feeds nothing else."""
    producers, consumers = layer_graph(model)
    pairs = {}
    for layer in model.layers:
        if not isinstance(layer, layers.BatchNormalization):
            continue
        before = producers.get(layer.name)
        if not before or len(before) != 1:
            continue
        conv = model.get_layer(before[0])
        if (type(conv) in (layers.Conv2D, *ROUNDING_LAYERS) and consumers[conv.name] == [layer.name]
                and conv.get_config()["activation"] == "linear" and layer.axis in (-1, 3)):
            pairs[layer.name] = conv.name
    return pairs


def quantization_aware(model, *, full_integer=False):
    """A copy of `model` that rounds as dynamic-range int8 does (or full-integer int8,
    with `full_integer`), for fine-tuning.

    Batch norm that follows a convolution is folded into it (its layer becomes
    an Identity, so that the names stay), and every Conv2D becomes a
    QuantizedConv2D (or an IntegerConv2D, except one that reads the image, which
    stays a float Conv2D) with a bias. Only functional models of
    built-in layers qualify: a convolution inside a custom layer would be left in
    float. A full-integer copy needs `calibrate_ranges` before it computes anything.

    Raises
    ------
    DenoiserError
        For convolutions inside custom layers or grouped ones, and for a full-integer
        copy of a model that merges tensors (other than its final subtraction).
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
    reading_the_image = _reading_the_image(model) if full_integer else set()

    def replace(layer):
        if layer.name in folded:
            return layers.Identity(name=layer.name)
        if isinstance(layer, layers.Conv2D):
            config = {**_conv2d_config(layer), "use_bias": layer.use_bias or layer.name in convs}
            if not full_integer:
                return QuantizedConv2D.from_config(config)
            if layer.name in reading_the_image:
                return layers.Conv2D.from_config(config)
            return IntegerConv2D.from_config({**config, "float_kernel": image_facing(layer.kernel.shape)})
        return None

    def call(layer, *args, **kwargs):
        # The Identity takes the tensor alone, not the batch norm's mask and training flags.
        return layer(args[0]) if isinstance(layer, layers.Identity) else layer(*args, **kwargs)

    aware = clone_with(model, replace, call_function=call)
    for layer in model.layers:
        if layer.weights and layer.name not in folded and layer.name not in convs:
            _copy_weights(layer, aware.get_layer(layer.name))
    for norm_name, conv_name in folded.items():
        norm, conv = model.get_layer(norm_name), model.get_layer(conv_name)
        kernel = np.asarray(conv.kernel)
        bias = np.asarray(conv.bias) if conv.use_bias else np.zeros(kernel.shape[-1], np.float32)
        gain = 1.0 / np.sqrt(np.asarray(norm.moving_variance) + norm.epsilon)
        if norm.scale:
            gain = gain * np.asarray(norm.gamma)
        shift = np.asarray(norm.beta) if norm.center else 0.0
        _copy_weights(
            [(kernel * gain).astype(np.float32), ((bias - np.asarray(norm.moving_mean)) * gain + shift).astype(np.float32)],
            aware.get_layer(conv_name),
        )
    return aware


def _reading_the_image(model):
    """The image-facing convolutions that read the model's input, which a full-integer
    export computes in float from the float image. Raises DenoiserError for a model of
    other layers than a chain of convolutions."""
    producers, _ = layer_graph(model)
    final = [layer.name for layer in model.layers if layer.name == "denoised" and isinstance(layer, layers.Subtract)]
    others = [layer.name for layer in model.layers if not isinstance(layer, CHAIN_LAYERS) and layer.name not in final]
    if others:
        raise DenoiserError(f"full-integer quantization-aware training takes chains of convolutions; "
                            f"{', '.join(others)} would round over ranges of their own")
    inputs = {layer.name for layer in model.layers if isinstance(layer, layers.InputLayer)}
    return {layer.name for layer in model.layers if isinstance(layer, layers.Conv2D)
            and image_facing(layer.kernel.shape) and set(producers.get(layer.name) or ()) <= inputs}


def _conv2d_config(layer):
    """A convolution's config as a plain Conv2D takes it."""
    config = layer.get_config()
    config.pop("float_kernel", None)
    return config


def _copy_weights(source, target):
    """`source`'s weights (a layer, or a list) into `target`, whose extra weights (an
    IntegerConv2D's ranges) stay as they are."""
    values = source.get_weights() if isinstance(source, layers.Layer) else source
    target.set_weights([*values, *target.get_weights()[len(values):]])


def calibrate_ranges(model, samples, *, batch=4):
    """Sets every IntegerConv2D's input range as the converter calibrates it: the
    minimum and maximum of that tensor over `samples` (float NHWC) in the float model
    of the same weights. Returns `model`."""
    plain = strip_quantization(model)
    integer = [layer for layer in model.layers if isinstance(layer, IntegerConv2D)]
    tensors = [plain.get_layer(layer.name).input for layer in integer]
    probe = keras.Model(plain.inputs, tensors)
    low, high = np.full(len(tensors), np.inf), np.full(len(tensors), -np.inf)
    for first in range(0, len(samples), batch):
        values = probe.predict(np.asarray(samples[first : first + batch], np.float32), verbose=0)
        values = values if isinstance(values, (list, tuple)) else [values]
        low = np.minimum(low, [float(np.min(v)) for v in values])
        high = np.maximum(high, [float(np.max(v)) for v in values])
    for layer, value_range in zip(integer, zip(low, high)):
        layer.input_range.assign(np.array(value_range, np.float32))
    return model


def is_full_integer(model):
    """Whether `model` was made quantization-aware for full-integer int8."""
    return any(isinstance(layer, IntegerConv2D) for layer in model.layers)


def strip_quantization(model):
    """`model` with each QuantizedConv2D or IntegerConv2D back as a plain Conv2D of the
    same weights (an IntegerConv2D's ranges go)."""
    if not any(isinstance(layer, ROUNDING_LAYERS) for layer in model.layers):
        return model

    def replace(layer):
        return layers.Conv2D.from_config(_conv2d_config(layer)) if isinstance(layer, ROUNDING_LAYERS) else None

    plain = clone_with(model, replace)
    for layer in model.layers:
        if layer.weights:
            target = plain.get_layer(layer.name)
            target.set_weights(layer.get_weights()[: len(target.weights)])
    return plain
