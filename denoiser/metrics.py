"""Quality metrics exactly as the evaluation protocol defines them, and a blind
noise-level estimate.

Protocol: the output is clipped to [0, 1], scaled by 255 and rounded to uint8;
PSNR is over all pixels and channels with data range 255; SSIM is scikit-image's
Gaussian-window SSIM on the same uint8 images.
"""

import numpy as np
from skimage.metrics import structural_similarity
from skimage.restoration import estimate_sigma

STRIP_ROWS = 256
SSIM_STRIP_ROWS = 64  # scikit-image keeps about a dozen float64 maps of each strip
SSIM_WINDOW = 11  # the Gaussian window of sigma 1.5, truncated at 3.5 sigma
ESTIMATE_SIDE = 2048
PHOTO_BLOCK = 16
PHOTO_QUANTILES = (0.05, 0.25)
PHOTO_NOISE_FACTOR = 2.63


def quantize(image):
    """Float image in [0, 1] -> uint8, clipped and rounded as the protocol says.

    Computed in float64, in row strips so that a large photo needs no full-size
    float64 copy.
    """
    image = np.asarray(image)
    out = np.empty(image.shape, np.uint8)
    for start in range(0, image.shape[0], STRIP_ROWS):
        rows = np.clip(image[start : start + STRIP_ROWS].astype(np.float64), 0.0, 1.0)
        out[start : start + STRIP_ROWS] = np.rint(rows * 255.0)
    return out


def _pair(reference, estimate):
    reference, estimate = quantize(reference), quantize(estimate)
    if reference.shape != estimate.shape:
        raise ValueError(f"shapes differ: {reference.shape} vs {estimate.shape}")
    return reference, estimate


def psnr(clean, estimate, *, data_range=255):
    """PSNR in dB of `estimate` against `clean`, both float in [0, 1], on uint8 values."""
    if data_range != 255:
        raise ValueError("the protocol measures on uint8 images; data_range must be 255")
    clean, estimate = _pair(clean, estimate)
    squared = 0
    # Row strips keep the memory of a 24-megapixel comparison small.
    for start in range(0, clean.shape[0], STRIP_ROWS):
        diff = clean[start : start + STRIP_ROWS].astype(np.int32) - estimate[start : start + STRIP_ROWS]
        squared += int(np.sum(diff * diff, dtype=np.int64))
    mse = squared / clean.size
    if mse == 0:
        return float("inf")
    return float(10.0 * np.log10(data_range**2 / mse))


def ssim(clean, estimate, *, data_range=255):
    """Gaussian-window SSIM on the uint8 images, averaged over pixels and channels.

    Equal to skimage's `structural_similarity(..., gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False)`, computed in overlapping row strips so that its
    float64 intermediates stay small for large photos.
    """
    if data_range != 255:
        raise ValueError("the protocol measures on uint8 images; data_range must be 255")
    clean, estimate = _pair(clean, estimate)
    height, width = clean.shape[:2]
    if min(height, width) < SSIM_WINDOW:
        raise ValueError(f"SSIM needs an image of at least {SSIM_WINDOW}x{SSIM_WINDOW} pixels, got {width}x{height}")
    pad = (SSIM_WINDOW - 1) // 2
    total, count = 0.0, 0
    # Keep rows [pad, height - pad), as skimage does; each strip reads `pad` rows of
    # context beyond the rows it keeps, so every kept value is exact.
    for keep_start in range(pad, height - pad, SSIM_STRIP_ROWS):
        keep_stop = min(keep_start + SSIM_STRIP_ROWS, height - pad)
        read_start, read_stop = max(0, keep_start - 2 * pad), min(height, keep_stop + 2 * pad)
        _, ssim_map = structural_similarity(
            clean[read_start:read_stop], estimate[read_start:read_stop], data_range=data_range, channel_axis=-1,
            gaussian_weights=True, sigma=1.5, use_sample_covariance=False, full=True,
        )
        kept = ssim_map[keep_start - read_start : keep_stop - read_start, pad : width - pad]
        total += float(np.sum(kept, dtype=np.float64))
        count += kept.size
    return total / count


def estimate_noise_sigma(noisy):
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


def estimate_photo_noise(noisy):
    """Blind estimate of a photo's noise level: the standard deviation of noise
    minus the noise-free image, on the 0-255 scale, for camera noise.

    A camera's noise is spatially correlated and its finest wavelet band is what
    JPEG removes first, so `estimate_noise_sigma` reads a fraction of it. Here the
    residual after a Gaussian blur of one pixel is measured in 16x16 blocks; the
    blocks whose residual is between the 5th and 25th percentile are taken as the
    flat ones, and their mean residual is scaled by PHOTO_NOISE_FACTOR, fitted on
    18 real training scenes (see the README for its error on held-out scenes). On
    at most the central 2048x2048 pixels.
    """
    import cv2

    noisy = np.asarray(noisy, dtype=np.float32)
    if noisy.ndim != 3:
        raise ValueError(f"expected an HWC image, got shape {noisy.shape}")
    h, w = noisy.shape[:2]
    if min(h, w) < PHOTO_BLOCK:
        raise ValueError(f"the noise estimate needs an image of at least {PHOTO_BLOCK}x{PHOTO_BLOCK} pixels")
    top, left = max(0, (h - ESTIMATE_SIDE) // 2), max(0, (w - ESTIMATE_SIDE) // 2)
    noisy = noisy[top : top + ESTIMATE_SIDE, left : left + ESTIMATE_SIDE] * np.float32(255)
    residual = noisy - cv2.GaussianBlur(noisy, (0, 0), 1.0).reshape(noisy.shape)
    rows, cols = residual.shape[0] // PHOTO_BLOCK, residual.shape[1] // PHOTO_BLOCK
    blocks = residual[: rows * PHOTO_BLOCK, : cols * PHOTO_BLOCK].reshape(
        rows, PHOTO_BLOCK, cols, PHOTO_BLOCK, residual.shape[2])
    spread = np.sort(blocks.std(axis=(1, 3)).mean(axis=-1), axis=None)
    low, high = (int(q * (len(spread) - 1)) for q in PHOTO_QUANTILES)
    return float(PHOTO_NOISE_FACTOR * np.mean(spread[low : high + 1]))
