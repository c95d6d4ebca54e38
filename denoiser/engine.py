"""The denoising pipeline every front end calls: channel matching, the noise
level, and tiled inference through any runtime."""

import numpy as np

from .errors import DenoiserError
from .metrics import estimate_noise_sigma
from .tiling import plan_tiles, run_tiled


def _check_image(image):
    image = np.asarray(image, dtype=np.float32)
    if image.ndim != 3 or image.shape[2] not in (1, 3):
        raise DenoiserError(f"expected an HWC image with 1 or 3 channels, got shape {image.shape}")
    return image


def count_tiles(image_shape, runtime, *, tile=None):
    """How many tiles (and so progress steps) `denoise` will run."""
    height, width = image_shape[:2]
    tile = tile or runtime.tile
    planes = image_shape[2] if runtime.channels == 1 and image_shape[2] == 3 else 1
    return planes * len(plan_tiles(height, width, tile=tile, margin=runtime.margin))


def denoise(noisy, runtime, *, sigma=None, tile=None, batch=None, progress=None):
    """Denoises a float HWC image in [0, 1] with `runtime`, tile by tile.

    A gray image goes to a colour model by replication, a colour image to a gray
    model plane by plane. `sigma` (0-255) matters only to the classical filters;
    when it is None they use the blind estimate. `progress(done, total)` counts tiles.
    """
    noisy = _check_image(noisy)
    tile = tile or runtime.tile
    if runtime.kind == "litert" and tile > runtime.tile:
        raise DenoiserError(f"this model takes tiles of at most {runtime.tile} pixels, not {tile}")
    batch = batch or runtime.batch
    if runtime.kind == "classical" and sigma is None:
        sigma = estimate_noise_sigma(noisy)

    def predict(tiles):
        return runtime.predict(tiles, sigma=sigma)

    options = dict(tile=tile, margin=runtime.margin, batch=batch)
    channels = runtime.channels
    if channels is None or channels == noisy.shape[2]:
        return run_tiled(noisy, predict, progress=progress, **options)
    if channels == 3:
        colour = run_tiled(np.repeat(noisy, 3, axis=2), predict, progress=progress, **options)
        return colour.mean(axis=2, keepdims=True)
    total = count_tiles(noisy.shape, runtime, tile=tile)
    per_plane = total // 3
    planes = []
    for c in range(3):
        def plane_progress(done, _total, offset=c * per_plane):
            if progress is not None:
                progress(offset + done, total)

        planes.append(run_tiled(noisy[..., c : c + 1], predict, progress=plane_progress, **options))
    return np.concatenate(planes, axis=2)


def denoise_whole(noisy, runtime, *, sigma=None):
    """Whole-image inference in one call, the reference that tiling must match."""
    noisy = _check_image(noisy)
    return runtime.predict(noisy[None], sigma=sigma)[0]
