"""Quality metrics exactly as the evaluation protocol defines them, and a blind
noise-level estimate.

Protocol: the output is clipped to [0, 1], scaled by 255 and rounded to uint8;
PSNR is over all pixels and channels with data range 255; SSIM is scikit-image's
Gaussian-window SSIM on the same uint8 images.
"""

from collections.abc import Sequence

import numpy as np
from skimage.restoration import estimate_sigma

from .io import to_integer

STRIP_ROWS = 256
SSIM_STRIP_ROWS = 64  # about ten float64 maps of a strip are alive at once
SSIM_WINDOW = 11  # the Gaussian window of sigma 1.5, truncated at 3.5 sigma
ESTIMATE_SIDE = 2048
PHOTO_BLOCK = 16
PHOTO_QUANTILES = (0.05, 0.25)
PHOTO_NOISE_FACTOR = 2.63


def quantize(image: np.ndarray) -> np.ndarray:
    """The protocol's uint8 image: a float image in [0, 1] clipped and rounded
    (`io.to_integer`); a uint8 image is that already, and is taken as it is."""
    image = np.asarray(image)
    return image if image.dtype == np.uint8 else to_integer(image)


def _same_shapes(clean, estimates):
    for estimate in estimates:
        if np.shape(estimate) != np.shape(clean):
            raise ValueError(f"shapes differ: {np.shape(clean)} vs {np.shape(estimate)}")


def _check_range(data_range):
    if data_range != 255:
        raise ValueError("the protocol measures on uint8 images; data_range must be 255")


def psnr(clean: np.ndarray, estimate: np.ndarray, *, data_range: float = 255) -> float:
    """PSNR in dB of `estimate` against `clean`, each float in [0, 1] or the protocol's
    uint8, on uint8 values."""
    _check_range(data_range)
    _same_shapes(clean, [estimate])
    return _psnr_by_strips(clean, estimate)


def _psnr_by_strips(clean, estimate):
    squared, size = 0, 0
    # Row strips, each quantized on its own, keep a 24-megapixel comparison small.
    for start in range(0, np.shape(clean)[0], STRIP_ROWS):
        rows = slice(start, start + STRIP_ROWS)
        diff = quantize(clean[rows]).astype(np.int32) - quantize(estimate[rows])
        squared += int(np.sum(diff * diff, dtype=np.int64))
        size += diff.size
    mse = squared / size
    if mse == 0:
        return float("inf")
    return float(10.0 * np.log10(255.0**2 / mse))


def scores(clean: np.ndarray, estimates: Sequence[np.ndarray], *, data_range: float = 255) -> list[tuple[float, float | None]]:
    """[(PSNR, SSIM)] of each of `estimates` against `clean`, SSIM sharing the clean
    image's statistics; SSIM is None for an image smaller than its window. Equal to
    `psnr` and `ssim` one by one."""
    _check_range(data_range)
    _same_shapes(clean, estimates)
    psnrs = [_psnr_by_strips(clean, estimate) for estimate in estimates]
    if min(np.shape(clean)[:2]) < SSIM_WINDOW:
        return [(value, None) for value in psnrs]
    return list(zip(psnrs, _ssim_by_strips(clean, estimates)))


def ssim(clean: np.ndarray, estimate: np.ndarray, *, data_range: float = 255) -> float | None:
    """Gaussian-window SSIM on the uint8 images, averaged over pixels and channels.

    Equal to skimage's `structural_similarity(..., gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False)` (tested to 1e-9); see `ssim_many`.
    """
    return ssim_many(clean, [estimate], data_range=data_range)[0]


def _ssim_window():
    """scipy's gaussian_filter kernel for sigma 1.5, truncated at 3.5 sigma: 11 taps."""
    radius = (SSIM_WINDOW - 1) // 2
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / 1.5) ** 2)
    return taps / taps.sum()


def ssim_many(clean: np.ndarray, estimates: Sequence[np.ndarray], *, data_range: float = 255) -> list[float | None]:
    """`ssim(clean, estimate)` for each of `estimates`, sharing the clean image's
    local statistics.

    The same arithmetic as scikit-image, in float64, with OpenCV's separable filter
    (several times faster than scipy's) over overlapping row strips, so that a large
    photo needs no full-size float64 maps. Only rows and columns at least the
    window's radius inside are kept, as scikit-image keeps them, so the filter's
    border rule never reaches a kept value. None for an image smaller than the
    window on a side (a 12000x8 strip has no SSIM, and no table should fail on it).
    """
    _check_range(data_range)
    _same_shapes(clean, estimates)
    if min(np.shape(clean)[:2]) < SSIM_WINDOW:
        return [None for _ in estimates]
    return _ssim_by_strips(clean, estimates)


def _ssim_by_strips(clean, estimates, data_range=255):
    import cv2

    height, width = np.shape(clean)[:2]
    pad = (SSIM_WINDOW - 1) // 2
    taps = _ssim_window()
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2

    def smooth(values):
        return cv2.sepFilter2D(values, cv2.CV_64F, taps, taps, borderType=cv2.BORDER_REFLECT)

    def strip(image, rows):
        values = quantize(image[rows]).astype(np.float64)
        return values[..., 0] if values.ndim == 3 and values.shape[2] == 1 else values  # OpenCV gives 2-D back

    totals, count = [0.0] * len(estimates), 0
    for keep_start in range(pad, height - pad, SSIM_STRIP_ROWS):
        keep_stop = min(keep_start + SSIM_STRIP_ROWS, height - pad)
        read_start, read_stop = keep_start - pad, keep_stop + pad
        rows = slice(keep_start - read_start, keep_stop - read_start)
        x = strip(clean, slice(read_start, read_stop))
        mx, mxx = smooth(x), smooth(x * x)
        vx = (mxx - mx * mx)[rows, pad : width - pad]
        for i, estimate in enumerate(estimates):
            y = strip(estimate, slice(read_start, read_stop))
            my, myy, mxy = smooth(y), smooth(y * y), smooth(x * y)
            vy = myy - my * my
            vxy = mxy - mx * my
            a, b = mx[rows, pad : width - pad], my[rows, pad : width - pad]
            vy, vxy = vy[rows, pad : width - pad], vxy[rows, pad : width - pad]
            local = ((2 * a * b + c1) * (2 * vxy + c2)) / ((a * a + b * b + c1) * (vx + vy + c2))
            totals[i] += float(np.sum(local, dtype=np.float64))
        count += vx.size
    return [total / count for total in totals]


def estimate_noise_sigma(noisy: np.ndarray) -> float:
    """Blind estimate of additive Gaussian sigma on the 0-255 scale.

    Donoho's wavelet median estimator per channel, averaged over channels, on at
    most the central 2048x2048 pixels. Works on a photo with no clean reference;
    textured images bias it slightly upwards.
    """
    noisy = np.asarray(noisy, dtype=np.float32)
    if noisy.ndim != 3:
        raise ValueError(f"expected an HWC image, got shape {noisy.shape}")
    if min(noisy.shape[:2]) < 4:
        raise ValueError("the noise estimate needs an image of at least 4x4 pixels")
    h, w = noisy.shape[:2]
    top, left = max(0, (h - ESTIMATE_SIDE) // 2), max(0, (w - ESTIMATE_SIDE) // 2)
    noisy = noisy[top : top + ESTIMATE_SIDE, left : left + ESTIMATE_SIDE]
    per_channel = estimate_sigma(noisy, channel_axis=-1, average_sigmas=False)
    return float(np.mean(per_channel) * 255.0)


def estimate_photo_noise(noisy: np.ndarray) -> float:
    """Blind estimate of a photo's noise level: the standard deviation of noise
    minus the noise-free image, on the 0-255 scale, for camera noise.

    A camera's noise is spatially correlated and its finest wavelet band is what
    JPEG removes first, so `estimate_noise_sigma` reads a fraction of it. Here the
    residual after a Gaussian blur of one pixel is measured in 16x16 blocks; the
    blocks whose residual is between the 5th and 25th percentile are taken as the
    flat ones, and their mean residual is scaled by PHOTO_NOISE_FACTOR, fitted on
    18 real training scenes (docs/real-photos.md gives its error on held-out scenes). On
    at most the central 2048x2048 pixels.
    """
    import cv2

    noisy = np.asarray(noisy, dtype=np.float32)
    if noisy.ndim != 3:
        raise ValueError(f"expected an HWC image, got shape {noisy.shape}")
    h, w = noisy.shape[:2]
    if min(h, w) < 2:
        raise ValueError(f"the noise estimate needs an image of at least 2x2 pixels, got {w}x{h}")
    # An image smaller than a block is one block of its own size: an estimate from
    # what there is, rougher, but no refusal of an 8-pixel icon.
    block = min(PHOTO_BLOCK, h, w)
    top, left = max(0, (h - ESTIMATE_SIDE) // 2), max(0, (w - ESTIMATE_SIDE) // 2)
    noisy = noisy[top : top + ESTIMATE_SIDE, left : left + ESTIMATE_SIDE] * np.float32(255)
    residual = noisy - cv2.GaussianBlur(noisy, (0, 0), 1.0).reshape(noisy.shape)
    rows, cols = residual.shape[0] // block, residual.shape[1] // block
    blocks = residual[: rows * block, : cols * block].reshape(rows, block, cols, block, residual.shape[2])
    spread = np.sort(blocks.std(axis=(1, 3)).mean(axis=-1), axis=None)
    low, high = (int(q * (len(spread) - 1)) for q in PHOTO_QUANTILES)
    return float(PHOTO_NOISE_FACTOR * np.mean(spread[low : high + 1]))
