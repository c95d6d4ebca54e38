"""Conversion of Keras models to LiteRT (.tflite): float32, float16, dynamic-range
int8 and full-integer int8 with a representative set of noisy training patches.

Residual models are exported without their final subtraction: the file outputs
the noise estimate and the runtime subtracts it in float. The noise has a far
smaller range than the image, so an int8 output loses far less there, and the
input passes to the output at full precision.

Before a full-integer conversion, the channels of each ReLU output are rescaled
to more even ranges (`equalize_activations`); the float function stays the same.
On held-out training images this took the colour DnCNN's full-integer loss at
sigma 15 from 1.46 dB to about 0.45. A full-integer file keeps the convolutions that
read or write the image in float (`_in_float`): rounding the input passes its error
straight to the output, which the residual subtraction does not undo. On CBSD68 that
took the fine-tuned colour DnCNN from -0.168 to -0.112 dB against float (same
weights), for 6% of its speed. Dynamic-range int8 is left alone: there
the same rescaling moved quality by -0.12 to +0.1 dB depending on its strength,
no reliable gain; quantization-aware fine-tuning (`qat`) is what helps there, and
`image_convolutions_in_float` keeps the convolutions that read or write the image
out of its rounding.
"""

import tempfile
from pathlib import Path

import numpy as np

from ..architectures.graph import clone_with, layer_graph
from ..architectures.quantized import SlicedConv2D, float_slices, image_facing
from ..errors import DenoiserError
from ..io import list_images, load_image, to_float, write_atomically
from .data import extract_patches
from .qat import is_full_integer, strip_quantization

VARIANTS = ("float32", "float16", "int8_dynamic", "int8_full")
# The input shape a file is written with. The runtime resizes it to each image's tiles,
# so it only sets the shape of the calibration patches of a full-integer conversion.
EXPORT_TILE, EXPORT_BATCH = 256, 2


def noise_branch(model):
    """The sub-model up to the noise estimate, or None for a non-residual model."""
    import keras

    try:
        final = model.get_layer("denoised")
    except ValueError:
        return None
    if not isinstance(final, keras.layers.Subtract):
        return None
    return keras.Model(model.inputs, final.input[1], name=f"{model.name}_noise")


def convert(model, variant, *, tile=EXPORT_TILE, batch=EXPORT_BATCH, representative=None, equalize=True):
    """Returns (tflite bytes, output kind 'noise' or 'denoised').

    A quantization-aware model is converted from its plain Conv2D twin. Full-integer
    int8 first evens out ReLU channel ranges, unless `equalize` is False or the model
    was made quantization-aware for full integer.
    """
    import tensorflow as tf

    if variant not in VARIANTS:
        raise DenoiserError(f"unknown variant {variant!r}; choose one of {VARIANTS}")
    branch = noise_branch(model)
    target, output = (branch, "noise") if branch is not None else (model, "denoised")
    # A full-integer quantization-aware model was equalized before its fine-tuning
    # (`train`), which taught it the ranges it has: rescaling them now would undo that.
    equalize = equalize and not is_full_integer(target)
    target = resizable(strip_quantization(target))
    if equalize and variant == "int8_full" and representative is not None:
        target = equalize_activations(target, np.asarray(representative, np.float32))
    if variant == "int8_dynamic":
        target = image_convolutions_in_float(target)
    channels = model.input_shape[-1]
    spec = tf.TensorSpec([batch, tile, tile, channels], tf.float32)
    with tempfile.TemporaryDirectory() as saved:
        target.export(saved, format="tf_saved_model", input_signature=[spec], verbose=False)
        converter = _configure(tf.lite.TFLiteConverter.from_saved_model(saved), variant, batch, representative)
        if variant == "int8_full":
            float_file = tf.lite.TFLiteConverter.from_saved_model(saved).convert()
            return _in_float(converter, _image_convolution_outputs(float_file)), output
        return converter.convert(), output


def _image_convolution_outputs(content):
    """The names of the tensors that the image-facing convolutions of a float LiteRT
    model write, as the converter names them."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=content)
    tensors = {tensor["index"]: tensor for tensor in interpreter.get_tensor_details()}
    names = []
    # Only the private op listing tells which tensors an op reads and writes.
    for op in interpreter._get_ops_details():
        if op["op_name"] != "CONV_2D":
            continue
        filters, height, width, fan_in = tensors[op["inputs"][1]]["shape"]
        if image_facing((height, width, fan_in, filters)):
            names.append(tensors[op["outputs"][0]]["name"])
    return names


def _in_float(converter, nodes):
    """The full-integer conversion of `converter`, with the ops that write `nodes` left
    in float (TensorFlow's selective quantization, through its quantization debugger)."""
    import warnings

    import tensorflow as tf

    if not nodes:
        return converter.convert()
    with warnings.catch_warnings():
        # The debugger builds TensorFlow's own interpreter, which warns that it is deprecated.
        warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated")
        debugger = tf.lite.experimental.QuantizationDebugger(
            converter=converter, debug_dataset=converter.representative_dataset,
            debug_options=tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=nodes),
        )
        return debugger.get_nondebug_quantized_model()


def resizable(model):
    """`model` as LiteRT can resize it: layers whose converted form holds shapes as
    constants, which a resized input would contradict, replaced by the same function.

    A 2x2 transposed convolution of stride 2 becomes a 1x1 convolution to four times
    the features and a depth-to-space (`SubPixelConvolution`): TRANSPOSE_CONV keeps its
    output shape as a constant, and XNNPACK cannot resize it. The padding to a multiple
    of the stride (PadToMultiple) and the crop back (CropLike) go: the runtime pads each
    tile as the model would (`LiteRTRuntime.multiple`, from `graph.input_multiple`).
    """
    import keras

    from ..architectures.layers import CropLike, PadToMultiple
    from .litert_layers import FirstInput, SubPixelConvolution

    def upsampling(layer):
        return (type(layer) is keras.layers.Conv2DTranspose and layer.kernel_size == (2, 2)
                and layer.strides == (2, 2) and layer.dilation_rate == (1, 1))

    transposed = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2DTranspose)]
    if not all(upsampling(layer) for layer in transposed) or not any(
            isinstance(layer, (PadToMultiple, CropLike)) for layer in model.layers):
        return model  # nothing to do, or a transposed convolution that no rewrite covers

    def replace(layer):
        if upsampling(layer):
            return SubPixelConvolution(layer.filters, activation=keras.activations.serialize(layer.activation),
                                       name=layer.name)
        if isinstance(layer, PadToMultiple):
            return keras.layers.Identity(name=layer.name)
        if isinstance(layer, CropLike):
            return FirstInput(name=layer.name)
        return None

    rewritten = clone_with(model, replace)
    for layer in model.layers:
        if not layer.weights:
            continue
        target = rewritten.get_layer(layer.name)
        if upsampling(layer):
            kernel, bias = layer.get_weights()  # kernel: (2, 2, out, in)
            # depth_to_space puts channel (2a + b) * out + o of a pixel at offset (a, b), channel o.
            pointwise = np.transpose(kernel, (3, 0, 1, 2)).reshape(1, 1, kernel.shape[3], 4 * kernel.shape[2])
            target.convolution.set_weights([pointwise, np.tile(bias, 4)])
        else:
            target.set_weights(layer.get_weights())
    return rewritten


def _equalizable(model):
    """(producer, relu, consumer) triples where a ReLU channel can be rescaled exactly.

    The ReLU's one input must come from a Conv2D or BatchNormalization that feeds
    nothing else, and its output must feed one Conv2D only, each layer used once.
    """
    import keras

    layers = {layer.name: layer for layer in model.layers}
    producers, consumers = layer_graph(model)
    triples = []
    for name, layer in layers.items():
        if type(layer) is not keras.layers.ReLU or layer.get_config().get("max_value") is not None:
            continue
        before, after = producers.get(name), consumers[name]
        reader = name
        # Identity layers, which batch-norm folding leaves behind, pass a scale through.
        while before and len(before) == 1 and type(layers[before[0]]) is keras.layers.Identity:
            if consumers[before[0]] != [reader]:
                break
            reader, before = before[0], producers.get(before[0])
        if not before or len(before) != 1 or len(after) != 1:
            continue
        producer, consumer = layers[before[0]], layers[after[0]]
        # Batch norm without gamma cannot carry a scale.
        scalable = type(producer) is keras.layers.Conv2D or (
            type(producer) is keras.layers.BatchNormalization and producer.scale)
        if (scalable and consumers[producer.name] == [reader] and type(consumer) is keras.layers.Conv2D
                and producers.get(consumer.name) == [name] and consumer.groups == 1):
            triples.append((producer.name, name, consumer.name))
    return triples


def equalize_activations(model, samples, *, power=0.5, exceeding=1e-4, batch=2):
    """A copy of `model` that computes the same function with more even ReLU channel ranges.

    Int8 kernels quantize an activation tensor with one scale for all its channels,
    so a channel that spans a tenth of the widest one keeps a tenth of the levels.
    A ReLU commutes with a positive scale: channel c is multiplied by s_c where it
    is made (the convolution's kernel and bias, or batch norm's gamma and beta) and
    the next convolution's weights for it are divided by s_c. Scaling every channel
    up to the widest would coarsen the next layer's per-channel weight quantization;
    s_c = (widest / range_c) ** power with power 0.5 splits the difference, the
    balance of Nagel et al., "Data-Free Quantization Through Weight Equalization
    and Bias Correction", ICCV 2019. A channel's range is the value that a fraction
    `exceeding` of its values over all `samples` exceed.
    """
    import keras

    triples = _equalizable(model)
    if not triples:
        return model
    ranges = _relu_ranges(model, triples, samples, exceeding=exceeding, batch=batch, per_channel=True)
    equalized = keras.models.clone_model(model)
    equalized.set_weights(model.get_weights())
    for (producer, _, consumer), spans in zip(triples, ranges):
        spans = np.asarray(spans, np.float64)
        widest = spans.max()
        if widest <= 0:
            continue
        alive = spans > 1e-3 * widest
        _rescale(equalized, producer, consumer,
                 np.where(alive, (widest / np.where(alive, spans, 1.0)) ** power, 1.0).astype(np.float32))
    return equalized


def clip_activations(model, samples, *, exceeding=1e-4, batch=2):
    """A copy of `model` whose ReLUs clip at the value that a fraction `exceeding` of
    their outputs over `samples` exceed, for full-integer int8.

    The converter gives each tensor the range of its minimum and maximum over the
    representative set, and a ReLU's maximum was about twice its 99.99th percentile
    in the colour DnCNN, so half of the 256 levels went to a ten-thousandth of the
    values. Each tensor is scaled (where it is made, and back in the next
    convolution: exact, as for `equalize_activations`) so that its clip value is 6,
    and its ReLU becomes a ReLU6, which the converter fuses into the convolution: its
    range is then at most [0, 6]. Only the clipped values change; quantization-aware
    fine-tuning (`train --full-integer`) learns the rest.
    """
    import keras

    triples = _equalizable(model)
    tops = _relu_ranges(model, triples, samples, exceeding=exceeding, batch=batch, per_channel=False)
    names = {relu for _, relu, _ in triples}
    clipped = clone_with(model, lambda layer: keras.layers.Activation("relu6", name=layer.name)
                         if layer.name in names else None)
    clipped.set_weights(model.get_weights())
    for (producer, _, consumer), top in zip(triples, tops):
        top = float(np.asarray(top).reshape(()))
        if top > 0:
            _rescale(clipped, producer, consumer, np.float32(6.0 / top))
    return clipped


def _relu_ranges(model, triples, samples, *, exceeding, batch, per_channel):
    """The value that a fraction `exceeding` of each triple's ReLU outputs over
    `samples` exceed: per channel, or over the whole tensor."""
    import keras

    relus = [model.get_layer(relu) for _, relu, _ in triples]
    probe = keras.Model(model.inputs, [layer.output for layer in relus])
    pixels = len(samples) * int(np.prod(samples.shape[1:-1]))
    ranks = [max(1, int(round(pixels * exceeding * (1 if per_channel else layer.output.shape[-1]))))
             for layer in relus]
    # The `rank` largest values of each chunk hold the `rank` largest of all, so
    # the range over all samples is exact without keeping every activation.
    tops = [[] for _ in relus]
    for first in range(0, len(samples), batch):
        outputs = probe(samples[first : first + batch])
        for kept, rank, values in zip(tops, ranks, outputs if isinstance(outputs, (list, tuple)) else [outputs]):
            values = np.asarray(values).reshape(-1, values.shape[-1] if per_channel else 1)
            kept.append(np.partition(values, -min(rank, len(values)), axis=0)[-rank:])
    return [np.partition(np.concatenate(kept), -rank, axis=0)[-rank] for kept, rank in zip(tops, ranks)]


def _rescale(model, producer, consumer, scale):
    """Multiplies the channels that layer `producer` makes by `scale` (its kernel and
    bias, or batch norm's gamma and beta) and divides layer `consumer`'s weights for
    them by it: the same function through a ReLU between them."""
    import keras

    made = model.get_layer(producer)
    outputs = [made.gamma, made.beta] if isinstance(made, keras.layers.BatchNormalization) else [made.kernel, made.bias]
    for variable in (v for v in outputs if v is not None):
        variable.assign(variable * scale)
    kernel = model.get_layer(consumer).kernel
    kernel.assign(kernel / (scale[None, None, :, None] if np.ndim(scale) else scale))


def image_convolutions_in_float(model):
    """`model` with its image-facing convolutions computed in slices that stay float.

    Dynamic-range conversion leaves a kernel in float only when it has fewer than
    MIN_QUANTIZED_ELEMENTS: the gray DnCNN's first and last (3x3x1x64) stay float,
    the colour model's (3x3x3x64) are rounded, input and all. A convolution that
    reads or writes at most 4 channels, a tiny share of the work, is split into
    slices under that size; the function stays the same.
    """

    import keras

    def slices(layer):
        if type(layer) is not keras.layers.Conv2D or layer.groups != 1:
            return None
        return float_slices(tuple(layer.kernel.shape))

    plans = {layer.name: plan for layer in model.layers if (plan := slices(layer))}
    if not plans:
        return model

    def replace(layer):
        if layer.name not in plans:
            return None
        axis, width = plans[layer.name]
        return SlicedConv2D.from_config({**layer.get_config(), "slice_width": width, "slice_axis": axis})

    sliced = clone_with(model, replace)
    sliced.set_weights(model.get_weights())
    return sliced


def _configure(converter, variant, batch, representative):
    import tensorflow as tf

    if variant == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif variant == "int8_dynamic":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    elif variant == "int8_full":
        if representative is None:
            raise DenoiserError("full-integer quantization needs representative noisy patches")
        samples = np.asarray(representative, np.float32)

        def dataset():
            for first in range(0, len(samples) - batch + 1, batch):
                yield [samples[first : first + batch]]

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = dataset
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    return converter


def representative_patches(clean_patches, *, tile, count=32, sigma_range=(0.0, 55.0), rng):
    """Noisy tiles for calibration, cut from clean training images (never test images)."""
    picks = []
    for _ in range(count):
        image = clean_patches[rng.integers(len(clean_patches))]
        h, w = image.shape[:2]
        if min(h, w) < tile:
            image = np.pad(image, [(0, max(0, tile - h)), (0, max(0, tile - w)), (0, 0)], mode="reflect")
            h, w = image.shape[:2]
        y, x = rng.integers(0, h - tile + 1), rng.integers(0, w - tile + 1)
        clean = image[y : y + tile, x : x + tile]
        sigma = rng.uniform(*sigma_range)
        picks.append(clean + rng.standard_normal(clean.shape).astype(np.float32) * sigma / 255.0)
    return np.stack(picks).astype(np.float32)


def calibration_set(train_dir, *, channels, tile, count, sigma_range=(0.0, 55.0), rng, images=64):
    """Noisy tiles for full-integer calibration from the first clean training images.

    Crops are as large as the tile where the images allow; smaller images (gray400's
    are 180x180) give smaller crops, which `representative_patches` reflects to size.
    """
    from PIL import Image

    files = list_images(train_dir)[:images]
    # The sizes come from the file headers; extract_patches decodes each image once.
    sizes = []
    for path in files:
        with Image.open(path) as image:
            sizes.append(min(image.size))
    side = min(tile, *sizes)
    clean = extract_patches(files, channels=channels, patch_size=side, stride=side, scales=(1.0,))
    return representative_patches(to_float(clean), tile=tile, count=count,
                                  sigma_range=sigma_range, rng=rng)


def export_file(model, path, variant, *, overwrite=True, **options):
    """Writes `model` converted to LiteRT `variant` (`convert` takes the `options`) at
    `path`, through a part file renamed into place (`io.write_atomically`; without
    `overwrite`, never over a file that appeared meanwhile); returns (the path, what
    the file outputs: "noise" or "denoised")."""
    data, output = convert(model, variant, **options)
    path = Path(path)
    write_atomically(path, data, overwrite=overwrite)
    return path, output


def _conversion_count(tile):
    """How many `tile`-pixel tiles a representative set takes: the pixels of 64 tiles
    of 256, and at least 8."""
    return max(8, 64 * 256**2 // tile**2)


def real_conversion_samples(pairs_dir, scenes, *, tile=EXPORT_TILE, rng=None):
    """The representative set of a level-map (real-photo) model: random noisy crops of
    `scenes` of `pairs_dir` (a run's training scenes), each with the level channel the
    app feeds it, the noise level `profile.estimate_level` reads on its whole photo. As
    many pixels as `conversion_samples` takes, spread evenly over the scenes; `rng`
    draws the crops (by default seeded 0, as `publish` draws them).

    Raises
    ------
    DenoiserError
        When `pairs_dir` holds none of `scenes`.
    """
    from ..engine import with_level
    from ..pairs import pair_files
    from ..profile import estimate_level

    rng = np.random.default_rng(0) if rng is None else rng
    pairs = pair_files(pairs_dir)
    found = [scene for scene in scenes if scene in pairs]
    if not found:
        raise DenoiserError(f"{pairs_dir} holds none of the run's training scenes, to calibrate int8 on")
    per_scene = -(-_conversion_count(tile) // len(found))
    crops = []
    for scene in found:
        noisy = load_image(pairs[scene][0]).pixels
        if min(noisy.shape[:2]) < tile:
            raise DenoiserError(f"{scene} is smaller than the {tile}-pixel calibration tile")
        level = estimate_level(noisy)
        for _ in range(per_scene):
            y, x = rng.integers(0, noisy.shape[0] - tile + 1), rng.integers(0, noisy.shape[1] - tile + 1)
            crops.append(with_level(noisy[y : y + tile, x : x + tile], level))
    return np.stack(crops)


def conversion_samples(train_dir, *, channels, sigma_range, tile=EXPORT_TILE):
    """The representative set that `publish` converts a run with: noisy tiles of the
    first images of `train_dir` at the run's `sigma_range`; larger tiles take fewer of
    them, for the same number of pixels."""
    return calibration_set(train_dir, channels=channels, tile=tile, count=_conversion_count(tile),
                           sigma_range=tuple(sigma_range), rng=np.random.default_rng(0))
