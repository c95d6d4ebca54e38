"""Runtimes behind one interface: Keras models, LiteRT (.tflite) models and the
classical filters. A runtime maps an NHWC float batch to a denoised batch of the
same shape; `engine.denoise` does the tiling around it.

LiteRT files made by `export` output the noise estimate ("noise"), which the
runtime subtracts from the input in float.

A model that takes a noise-level map (the real-photo models) reads one channel
more than it writes: the engine appends the map, and `channels` counts the
image's channels alone.

A LiteRT model's input is resized to the shape of the tiles it is given (one
shape per image: the tiler cuts every tile of an image alike), so tiles shrink to
cover the image exactly, as a Keras model's do, and no pixel is spent on padding.
A call runs up to `batch` tiles at once, the last call's input filled up, so the
interpreter is invoked once per batch, not once per tile.

A file exported without its model's padding (the U-Net: its input must be a
multiple of its total stride) takes tiles mirrored at their bottom and right up to
that `multiple`, as the Keras model pads its own input, and cropped back.
"""

import os
import sys
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Iterator, Protocol

import numpy as np

from .classical import CLASSICAL
from .errors import DenoiserError


class RuntimeKind(StrEnum):
    """What runs a model: it decides the device (only Keras uses a GPU) and whether
    the level is a strength (classical filters) or a map input (level-map models)."""

    KERAS = "keras"
    LITERT = "litert"
    CLASSICAL = "classical"


FROM_GRAPH = -1  # KerasRuntime's margin when it is to be read from the model's layers


class Runtime(Protocol):
    """What the engine, the service and the pages need of a runtime.

    `channels` counts the image's channels (None: any); `level_map` says whether the
    model reads a noise-level channel after the image, which the engine appends;
    `margin` is the tile margin in pixels, `tile` and `batch` the engine's defaults.
    """

    # Read-only to the engine, so that a runtime may hold them as fields or properties.
    @property
    def name(self) -> str: ...

    @property
    def kind(self) -> RuntimeKind: ...

    @property
    def margin(self) -> int: ...

    @property
    def tile(self) -> int: ...

    @property
    def batch(self) -> int: ...

    @property
    def multiple(self) -> int:
        """Tiles start at multiples of it: a model that strides by it sees the whole image's grid."""
        ...

    @property
    def channels(self) -> int | None: ...

    @property
    def level_map(self) -> bool: ...

    @property
    def device(self) -> str: ...

    def predict(self, batch: np.ndarray, *, level: float | np.ndarray | None = None) -> np.ndarray:
        """An NHWC float32 batch of tiles (with the level channel for a level-map
        model) -> the denoised NHWC batch, of `channels` channels."""
        ...


def keras_device(*, detailed: bool = False) -> str:
    """Where Keras computes: "GPU" or "CPU"; `detailed` adds the device's kind and the
    backend's version, for a training run's record."""
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        where = "GPU" if tf.config.list_physical_devices("GPU") else "CPU"
        return f"{where}, TensorFlow {tf.__version__}" if detailed else where
    if backend == "jax":
        import jax

        where = "GPU" if jax.default_backend() == "gpu" else "CPU"
        return f"{jax.devices()[0].device_kind}, JAX {jax.__version__}" if detailed else where
    return backend if detailed else "CPU"


VERBOSE_VARIABLE = "DENOISER_VERBOSE"


@contextmanager
def native_logs_hidden() -> Iterator[None]:
    """Hides what native code prints to the process's stderr meanwhile: TensorFlow's
    and LiteRT's start-up lines ("Created TensorFlow Lite XNNPACK delegate", oneDNN
    notices), which bypass Python's logging. Python's own exceptions still surface,
    after it. Set DENOISER_VERBOSE=1 (the CLI's --verbose) to see them."""
    if os.environ.get(VERBOSE_VARIABLE):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


@dataclass
class KerasRuntime:
    """A Keras model. Its tile margin is read from its layers
    (`architectures.graph.receptive_radius`) unless given."""

    model: Any
    margin: int = FROM_GRAPH
    name: str = "keras"
    tile: int = 0  # 0: the default below
    batch: int = 4
    kind: RuntimeKind = RuntimeKind.KERAS
    multiple: int = field(init=False, default=1)

    def __post_init__(self):
        if self.margin == FROM_GRAPH:
            from .architectures.graph import receptive_radius

            self.margin = receptive_radius(self.model)
        # By default tiles of 256, or four margins where the model sees farther (the U-Net's 176).
        self.tile = self.tile or max(256, 4 * self.margin)
        from .architectures.graph import input_multiple

        # Read once from the layers, as the margin is, not on every call.
        self.multiple = input_multiple(self.model)

    @property
    def channels(self):
        return self.model.output_shape[-1]

    @property
    def level_map(self):
        return self.model.input_shape[-1] == self.channels + 1

    @property
    def device(self):
        return keras_device()

    def predict(self, batch, *, level=None):
        return np.asarray(self.model.predict_on_batch(np.asarray(batch, np.float32)), np.float32)


@dataclass
class LiteRTRuntime:
    """A .tflite model. `tile` is the longest tile side the engine cuts for it and `batch`
    the most tiles per call (default: the file's own input shape); the input is resized
    to each image's tile shape."""

    path: Path
    margin: int
    name: str = "litert"
    output: str = "noise"
    threads: int = 0  # 0: every core; XNNPACK scales with them on large tiles
    tile: int = 0  # 0: the file's own input shape
    batch: int = 0
    multiple: int = 1
    kind: RuntimeKind = RuntimeKind.LITERT

    def __post_init__(self):
        self.threads = self.threads or os.cpu_count() or 1
        try:
            with native_logs_hidden():
                from ai_edge_litert.interpreter import Interpreter

                self._interpreter = Interpreter(model_path=str(self.path), num_threads=self.threads)
                self._interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise DenoiserError(f"{self.path}: not a usable LiteRT model ({exc})") from None
        self._input = self._interpreter.get_input_details()[0]
        self._output = self._interpreter.get_output_details()[0]
        shape = self._input["shape"]
        if self.output not in ("noise", "denoised"):
            raise DenoiserError(f"output must be 'noise' or 'denoised', got {self.output!r}")
        if len(shape) != 4:
            raise DenoiserError(f"{self.path}: expected an NHWC input, got shape {list(shape)}")
        self._inputs = int(shape[3])
        self._shape = tuple(int(n) for n in shape)
        self.tile = self.tile or int(max(shape[1], shape[2]))
        self.batch = self.batch or int(shape[0])
        self._channels = int(self._output["shape"][-1])
        # One interpreter serves one call at a time; concurrent sessions queue here.
        self._lock = threading.Lock()

    @property
    def channels(self):
        return self._channels

    @property
    def level_map(self):
        return self._inputs == self._channels + 1

    @property
    def device(self):
        return "CPU"

    def _to_input(self, values):
        dtype = self._input["dtype"]
        if dtype == np.float32:
            return values
        scale, zero = self._input["quantization"]
        info = np.iinfo(dtype)
        return np.clip(np.rint(values / scale + zero), info.min, info.max).astype(dtype)

    def _from_output(self, values):
        if self._output["dtype"] == np.float32:
            return values
        scale, zero = self._output["quantization"]
        return ((values.astype(np.float32) - zero) * scale).astype(np.float32)

    def _fit_input(self, count, height, width):
        """Rows of the input for `count` tiles of height x width: the input is resized
        only when the tiles' shape changes (a call with fewer tiles fills up the rows),
        to no more rows than tiles, so that a single tile or a whole image costs one."""
        rows, old_height, old_width = self._shape[:3]
        if (height, width) == (old_height, old_width) and rows <= self.batch:
            return rows
        shape = (min(self.batch, count), height, width, self._inputs)
        try:
            with native_logs_hidden():
                self._interpreter.resize_tensor_input(self._input["index"], list(shape))
                self._interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise DenoiserError(f"{self.path}: cannot take tiles of {height}x{width} ({exc})") from None
        self._shape = shape
        return shape[0]

    def _padded(self, chunk):
        """`chunk` mirrored at its bottom and right up to a multiple of `multiple`, as
        PadToMultiple pads in the Keras model: the mirror reaches at most the tile's own
        size, zeros go past that."""
        h, w = chunk.shape[1:3]
        pad_h, pad_w = -h % self.multiple, -w % self.multiple
        mirror_h, mirror_w = min(pad_h, h), min(pad_w, w)
        chunk = np.pad(chunk, [(0, 0), (0, mirror_h), (0, mirror_w), (0, 0)], mode="symmetric")
        return np.pad(chunk, [(0, 0), (0, pad_h - mirror_h), (0, pad_w - mirror_w), (0, 0)])

    def predict(self, batch, *, level=None):
        batch = np.asarray(batch, np.float32)
        n, h, w, c = batch.shape
        out = np.empty((n, h, w, self._channels), np.float32)
        with self._lock:
            rows = self._fit_input(n, h + -h % self.multiple, w + -w % self.multiple)
            for first in range(0, n, rows):
                chunk = batch[first : first + rows]
                if len(chunk) < rows:  # the last call: its unused rows are zeros
                    chunk = np.concatenate([chunk, np.zeros((rows - len(chunk), h, w, c), np.float32)])
                if self.multiple > 1:
                    chunk = self._padded(chunk)
                self._interpreter.set_tensor(self._input["index"], self._to_input(np.ascontiguousarray(chunk)))
                self._interpreter.invoke()
                kept = min(rows, n - first)
                result = self._from_output(self._interpreter.get_tensor(self._output["index"]))
                out[first : first + kept] = result[:kept, :h, :w]
        return batch[..., : self._channels] - out if self.output == "noise" else out


@dataclass
class ClassicalRuntime:
    """A classical filter (`classical.CLASSICAL`) behind the runtime interface: it needs
    the noise level, and its margin covers its filter's support. Raises DenoiserError
    for an unknown `method`."""

    method: str
    channels: int | None = 3
    tile: int = 512
    batch: int = 1
    kind: RuntimeKind = RuntimeKind.CLASSICAL
    device: str = "CPU"
    multiple: int = 1
    level_map: bool = False

    def __post_init__(self):
        if self.method not in CLASSICAL:
            raise DenoiserError(f"unknown classical method {self.method!r}; choose one of {sorted(CLASSICAL)}")

    @property
    def name(self):
        return self.method

    @property
    def margin(self):
        return CLASSICAL[self.method][1]

    def predict(self, batch, *, level=None):
        if level is None:
            raise DenoiserError(f"{self.method} needs the noise level")
        fn = CLASSICAL[self.method][0]
        return np.stack([fn(tile, level=level) for tile in batch])


class ChannelAdapter:
    """`inner`, a runtime of one channel count, run on images of another: a gray image
    goes to a colour model as three equal channels (the result is their mean), and a
    colour image to a gray model as its three planes, in one batch of three times the
    tiles, so that the engine tiles the image once. A level channel after the image
    goes with every plane."""

    def __init__(self, inner: Runtime, channels: int):
        if {inner.channels, channels} != {1, 3}:
            raise DenoiserError(f"{inner.name} takes {inner.channels} channel(s); it cannot run on {channels}")
        self.inner, self._channels = inner, channels

    @property
    def channels(self) -> int:
        return self._channels

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def kind(self) -> RuntimeKind:
        return self.inner.kind

    @property
    def margin(self) -> int:
        return self.inner.margin

    @property
    def tile(self) -> int:
        return self.inner.tile

    @property
    def batch(self) -> int:
        return self.inner.batch

    @property
    def multiple(self) -> int:
        return self.inner.multiple

    @property
    def level_map(self) -> bool:
        return self.inner.level_map

    @property
    def device(self) -> str:
        return self.inner.device

    def predict(self, batch: np.ndarray, *, level: float | np.ndarray | None = None) -> np.ndarray:
        image, extra = batch[..., : self._channels], batch[..., self._channels :]
        if self._channels == 1:
            colour = np.concatenate([np.repeat(image, 3, axis=-1), extra], axis=-1)
            return self.inner.predict(colour, level=level).mean(axis=-1, keepdims=True)
        n, h, w, _ = image.shape
        planes = np.moveaxis(image, -1, 1).reshape(n * 3, h, w, 1)
        if extra.shape[-1]:
            planes = np.concatenate([planes, np.repeat(extra, 3, axis=0)], axis=-1)
        out = self.inner.predict(planes, level=level)
        return np.moveaxis(out.reshape(n, 3, h, w), 1, -1)


def for_channels(runtime: Runtime, channels: int) -> Runtime:
    """`runtime` for an image of `channels` channels: itself where it takes them (or
    any), else a ChannelAdapter."""
    if runtime.channels is None or runtime.channels == channels:
        return runtime
    return ChannelAdapter(runtime, channels)
