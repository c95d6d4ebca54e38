"""The denoising pipeline every front end calls: channel matching, the noise
level, and tiled inference through any runtime."""

import numpy as np

from .errors import DenoiserError
from .metrics import estimate_noise_sigma
from .profile import estimate_level
from .runtimes import Runtime, RuntimeKind, for_channels
from .tiling import Progress, plan_tiles, run_tiled

# A noise level on the 0-255 scale: one number, or an HxW array for noise that varies.
Level = float | np.ndarray

MAX_LEVEL = 255.0


MIN_SIDE = 8
# Noisy values may stray beyond [0, 1] (the protocol does not clip); values beyond
# these bounds mean another scale, such as 0-255 floats.
VALUE_BOUNDS = (-2.0, 3.0)


def check_image(image: np.ndarray) -> np.ndarray:
    """`image` as float32 HWC, or a DenoiserError that says what is wrong with it:
    the shape, a side under MIN_SIDE pixels, integer samples, non-finite values, or
    values on another scale than [0, 1]. The CLI and the app check through here."""
    image = np.asarray(image)
    if image.dtype.kind != "f":
        raise DenoiserError(f"expected float samples in [0, 1], got {image.dtype}; convert integers with io.to_float")
    if image.ndim != 3 or image.shape[2] not in (1, 3):
        raise DenoiserError(f"expected an HWC image with 1 or 3 channels, got shape {image.shape}")
    height, width = image.shape[:2]
    if min(height, width) < MIN_SIDE:
        raise DenoiserError(f"the image is {width}x{height} pixels; it needs at least {MIN_SIDE} pixels on each side")
    image = image.astype(np.float32, copy=False)
    # One sum is NaN or infinite exactly when a value is, without a full-size mask.
    if not np.isfinite(image.sum(dtype=np.float64)):
        bad = np.count_nonzero(~np.isfinite(image))
        raise DenoiserError(f"the image holds {bad} non-finite values (NaN or infinity)")
    low, high = float(image.min()), float(image.max())
    if low < VALUE_BOUNDS[0] or high > VALUE_BOUNDS[1]:
        raise DenoiserError(f"the values run from {low:g} to {high:g}; expected the range 0 to 1")
    return image


def count_tiles(image_shape: tuple[int, ...], runtime: Runtime, *, tile: int | None = None) -> int:
    """How many tiles (and so progress steps) `denoise` will run."""
    height, width = image_shape[:2]
    return len(plan_tiles(height, width, tile=tile or runtime.tile, margin=runtime.margin, align=runtime.multiple))


def check_tiling(runtime: Runtime, tile: int) -> None:
    """A DenoiserError unless `runtime` can run on tiles of `tile` pixels: more than
    twice its margin, with room for a start on its grid (`tiling.plan_axis`)."""
    least = 2 * runtime.margin + runtime.multiple
    if tile < least:
        grid = f" and its grid of {runtime.multiple}" if runtime.multiple > 1 else ""
        raise DenoiserError(f"tiles must be at least {least} pixels for the model's margin of {runtime.margin}{grid}, "
                            f"not {tile}")


def check_level(level: Level | None, shape: tuple[int, ...], *, one_number: bool = False) -> np.ndarray:
    """`level` as float32, one number or an HxW map for an image of `shape`, or a
    DenoiserError: another shape, a map where `one_number` is asked (the classical
    filters take one strength), or values outside 0 to MAX_LEVEL."""
    try:
        level = np.asarray(level, dtype=np.float32)
    except (TypeError, ValueError):
        raise DenoiserError(f"the noise level must be a number, got {level!r}") from None
    if level.ndim == 3 and level.shape[2] == 1:
        level = level[..., 0]
    if one_number and level.ndim != 0:
        raise DenoiserError(f"this model takes one noise level, not a map of shape {level.shape}")
    if level.ndim not in (0, 2) or (level.ndim == 2 and level.shape != tuple(shape[:2])):
        raise DenoiserError(f"the noise level must be one number or a {shape[1]}x{shape[0]} map, got shape {level.shape}")
    if not np.all(np.isfinite(level)) or level.min() < 0 or level.max() > MAX_LEVEL:
        raise DenoiserError(f"the noise level must be between 0 and {MAX_LEVEL:g}, got {level.min():g} to {level.max():g}")
    return level


def level_map(level: Level | None, shape: tuple[int, ...]) -> np.ndarray:
    """The noise level (0-255 scale; one number, or one per pixel as an HxW array) as
    an HxWx1 map on the 0-1 scale, the extra input channel of a level-map model."""
    level = check_level(level, shape)
    # A view: one number costs no memory, however large the photo.
    return np.broadcast_to((level / np.float32(255)).astype(np.float32)[..., None], (*shape[:2], 1))


def with_level(image: np.ndarray, level: Level | None) -> np.ndarray:
    """`image` (HWC) with the map of `level` appended as its last channel: the input of
    a level-map model."""
    return np.concatenate([image, level_map(level, image.shape)], axis=2)


def default_level(noisy: np.ndarray, runtime: Runtime) -> float | None:
    """The level a model gets when none is given: the photo-noise estimate
    (`profile.estimate_level`) for a level-map model, the white-noise estimate for a
    classical filter. Not one estimate for both yet: on a small textured image the
    photo estimate reads the texture (32 on a 128-pixel astronaut at any noise), which
    a level-map model was trained to leave alone and a classical filter smears (#46)."""
    if not (runtime.level_map or runtime.kind == RuntimeKind.CLASSICAL):
        return None
    try:
        return estimate_level(noisy) if runtime.level_map else estimate_noise_sigma(noisy)
    except (ValueError, DenoiserError) as exc:
        raise DenoiserError(f"{exc}; give the noise level instead") from None


def resolve_level(noisy: np.ndarray, runtime: Runtime, level: Level | None) -> Level | None:
    """The level `runtime` is run at on `noisy`: `level` checked (`check_level`; one
    number for a classical filter), or `default_level` where it is None. One number
    comes back as a float, a map as an HxW float32 array."""
    if level is None:
        return default_level(noisy, runtime)
    checked = check_level(level, noisy.shape, one_number=runtime.kind == RuntimeKind.CLASSICAL)
    return float(checked) if checked.ndim == 0 else checked


def level_for_noise(noisy: np.ndarray, kind: str, level: float) -> float:
    """The level a model is given for noise of `kind` added at `level` (as the demo
    and `evaluate --noise` add it): the level itself for Gaussian noise, the photo-noise
    estimate for camera noise, and the white-noise estimate for the others, whose
    levels are no standard deviation."""
    if kind == "gaussian":
        return float(level)
    return estimate_level(noisy) if kind == "camera" else estimate_noise_sigma(noisy)


def denoise(noisy: np.ndarray, runtime: Runtime, *, level: Level | None = None, tile: int | None = None,
            batch: int | None = None, progress: Progress | None = None, out: np.ndarray | None = None,
            ensemble: bool = False) -> np.ndarray:
    """Denoises a float HWC image in [0, 1] with `runtime`, tile by tile.

    A gray image goes to a colour model by replication, a colour image to a gray
    model plane by plane (`runtimes.ChannelAdapter`). `level` (0-255) is the noise level: the classical filters
    take it as their strength, and a level-map model reads it as its map (one
    number, or an HxW array for noise that varies across the image). Other models
    ignore it. When it is None, `default_level` estimates it. `progress(done, total)`
    counts tiles. The result goes into `out` when given, which may be `noisy` itself
    (then no second full-size image is made). With `ensemble`, the result is the mean
    over the eight flips and rotations of the image (`ensemble_denoise`): eight times
    the work, for a little more quality.
    """
    noisy = check_image(noisy)
    runtime = for_channels(runtime, noisy.shape[2])
    for option, value in (("tile", tile), ("batch", batch)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1):
            raise DenoiserError(f"{option} must be a whole number of at least 1, got {value!r}")
    tile = tile or runtime.tile
    check_tiling(runtime, tile)
    batch = batch or runtime.batch
    level = resolve_level(noisy, runtime, level)
    if ensemble:
        return ensemble_denoise(noisy, runtime, level=level, tile=tile, batch=batch, progress=progress, out=out)
    # Built once, before any work, so that a bad level fails first.
    planes = level_map(level, noisy.shape) if runtime.level_map else None
    if out is not None and out.shape != noisy.shape:
        raise DenoiserError(f"the output must have the image's shape {noisy.shape}, not {out.shape}")

    def predict(tiles):
        return runtime.predict(tiles, level=level)

    return run_tiled(noisy, predict=predict, tile=tile, margin=runtime.margin, batch=batch, level=planes,
                     align=runtime.multiple, progress=progress, out=out)


DIHEDRAL = 8  # the flips and rotations of a square: rot90 by k % 4, then a mirror for k >= 4


def _turned(image, k):
    image = np.rot90(image, k % 4)
    return image[:, ::-1] if k >= 4 else image


def _turned_back(image, k):
    return np.rot90(image[:, ::-1] if k >= 4 else image, -(k % 4))


def ensemble_denoise(noisy: np.ndarray, runtime: Runtime, *, level: Level | None, tile: int | None = None,
                     batch: int | None = None, progress: Progress | None = None,
                     out: np.ndarray | None = None) -> np.ndarray:
    """The mean of `denoise` over the eight flips and rotations of `noisy` (a level map
    in `level` turns with the image). Self-ensembling, as EDSR and RIDNet report it:
    each orientation's errors differ, so their mean has less of them."""
    one_level = level is None or np.ndim(level) == 0
    counts = [count_tiles(_turned(noisy, k).shape, runtime, tile=tile) for k in range(DIHEDRAL)]
    total = np.zeros(noisy.shape, np.float32)
    for k in range(DIHEDRAL):
        def turn_progress(done, _total, offset=sum(counts[:k])):
            if progress is not None:
                progress(offset + done, sum(counts))

        turned = level if one_level else np.ascontiguousarray(_turned(np.asarray(level), k))
        result = denoise(np.ascontiguousarray(_turned(noisy, k)), runtime, level=turned, tile=tile, batch=batch,
                         progress=turn_progress)
        total += _turned_back(result, k)
    total /= DIHEDRAL
    if out is None:
        return total
    out[...] = total
    return out


def denoise_whole(noisy: np.ndarray, runtime: Runtime, *, level: Level | None = None) -> np.ndarray:
    """Whole-image inference in one call, the reference that tiling must match."""
    noisy = check_image(noisy)
    runtime = for_channels(runtime, noisy.shape[2])
    if runtime.level_map:
        noisy = with_level(noisy, level)
    return runtime.predict(noisy[None], level=level)[0]
