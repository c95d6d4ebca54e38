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

The rounding itself lives with the saved layer, `architectures.quantized`, so that
inference can load a fine-tuned model without this workshop.
"""

import numpy as np
from keras import layers

from ..architectures.graph import clone_with, layer_graph
from ..architectures.quantized import QuantizedConv2D
from ..errors import DenoiserError


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

    aware = clone_with(model, replace, call_function=call)
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

    plain = clone_with(model, replace)
    plain.set_weights(model.get_weights())
    return plain
