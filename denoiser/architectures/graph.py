"""What a built model's layer graph tells: who feeds whom, a copy with layers
replaced, and how far an output pixel sees (the tile margin).

The reach is read from the layers themselves, so a model tiles the same whatever
name it was saved under. A custom layer states its own with a `receptive_radius`
attribute.
"""

import math

import keras
from keras import layers

from ..errors import DenoiserError

# Layers that act on each pixel (or each pixel's channels) and see no neighbours.
POINTWISE = (
    layers.InputLayer, layers.ReLU, layers.Activation, layers.BatchNormalization, layers.Identity,
    layers.Add, layers.Subtract, layers.Multiply, layers.Concatenate,
)


def layer_graph(model):
    """(producer, consumers) of each layer, by name, from the functional config."""
    producers, consumers = {}, {layer.name: [] for layer in model.layers}

    def sources(value):
        if isinstance(value, dict):
            history = value.get("config", {}).get("keras_history") if value.get("class_name") == "__keras_tensor__" else None
            if history:
                yield history[0]
            for item in value.values():
                yield from sources(item)
        elif isinstance(value, (list, tuple)):
            for item in value:
                yield from sources(item)

    for config in model.get_config()["layers"]:
        inbound = config.get("inbound_nodes", [])
        names = list(sources(inbound))
        producers[config["name"]] = names if len(inbound) == 1 else None
        for name in names:
            consumers[name].append(config["name"])
    return producers, consumers


def clone_with(model, replace, **options):
    """A copy of `model`'s graph, unweighted, with `replace(layer)` standing in for
    each layer where it returns one and a fresh layer of the same kind elsewhere."""

    def clone(layer):
        replacement = replace(layer)
        return layer.__class__.from_config(layer.get_config()) if replacement is None else replacement

    return keras.models.clone_model(model, clone_function=clone, **options)


def _reach(layer, jump):
    """(pixels the layer adds to the field of view, in input pixels; the output's
    spacing in input pixels) for a layer whose input has spacing `jump`."""
    if isinstance(layer, (layers.Conv2D, layers.Conv2DTranspose)):
        (size, _), (dilation, _), (stride, _) = layer.kernel_size, layer.dilation_rate, layer.strides
        out = jump / stride if isinstance(layer, layers.Conv2DTranspose) else jump * stride
        return (size - 1) // 2 * dilation * max(jump, out), out
    if hasattr(layer, "receptive_radius"):
        return layer.receptive_radius * jump, jump
    if isinstance(layer, POINTWISE):
        return 0, jump
    raise DenoiserError(f"cannot tell how far layer {layer.name!r} ({type(layer).__name__}) sees, "
                        "so the model cannot be tiled")


def _walk(model):
    """(layer, the spacing of its input in image pixels, its added reach, its output's
    spacing) for every layer, in graph order."""
    producers, _ = layer_graph(model)
    radius, jump = {}, {}
    for layer in model.layers:
        before = producers.get(layer.name) or []
        spacing = max((jump[name] for name in before), default=1)
        added, jump[layer.name] = _reach(layer, spacing)
        radius[layer.name] = max((radius[name] for name in before), default=0) + added
        yield layer, spacing, radius[layer.name], jump[layer.name]


def receptive_radius(model):
    """The tile margin a built model needs: how far an output pixel sees, in pixels."""
    return int(max(radius for _, _, radius, _ in _walk(model)))


def multiply_adds_per_pixel(model):
    """The convolutions' multiply-adds per image pixel: each kernel's size times the
    share of image pixels where it runs (a quarter after a stride of 2)."""
    total = 0.0
    for layer, spacing, _, out_spacing in _walk(model):
        if isinstance(layer, (layers.Conv2D, layers.Conv2DTranspose)):
            # A convolution runs once per output pixel; a transposed one once per input pixel.
            runs = spacing if isinstance(layer, layers.Conv2DTranspose) else out_spacing
            total += float(math.prod(layer.kernel.shape)) / runs**2
    return total


def input_multiple(model):
    """What the height and width of `model`'s input must be a multiple of once its own
    padding is taken out (`training.export.resizable`): 1, or its PadToMultiple's."""
    return max((getattr(layer, "multiple", 1) for layer in model.layers if hasattr(layer, "multiple")), default=1)
