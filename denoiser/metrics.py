"""Quality metrics exactly as the evaluation protocol defines them, and a blind
noise-level estimate.

Protocol: the output is clipped to [0, 1], scaled by 255 and rounded to uint8;
PSNR is over all pixels and channels with data range 255; SSIM is scikit-image's
Gaussian-window SSIM on the same uint8 images.
"""

import numpy as np
from skimage.metrics import structural_similarity
from skimage.restoration import estimate_sigma


def quantize(image):
    """Float image in [0, 1] -> uint8, clipped and rounded as the protocol says."""
    return np.clip(np.rint(np.clip(np.asarray(image, np.float64), 0.0, 1.0) * 255.0), 0, 255).astype(np.uint8)


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
    mse = np.mean((clean.astype(np.float64) - estimate.astype(np.float64)) ** 2)
    if mse == 0:
        return float("inf")
    return float(10.0 * np.log10(data_range**2 / mse))


def ssim(clean, estimate, *, data_range=255):
    """Gaussian-window SSIM on the uint8 images (mean over channels)."""
    if data_range != 255:
        raise ValueError("the protocol measures on uint8 images; data_range must be 255")
    clean, estimate = _pair(clean, estimate)
    if min(clean.shape[:2]) < 7:
        raise ValueError(f"SSIM needs an image of at least 7x7 pixels, got {clean.shape[1]}x{clean.shape[0]}")
    return float(
        structural_similarity(
            clean, estimate, data_range=data_range, channel_axis=-1,
            gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
        )
    )


def estimate_noise_sigma(noisy):
    """Blind estimate of additive Gaussian sigma on the 0-255 scale.

    Donoho's wavelet median estimator per channel, averaged over channels. Works on
    a photo with no clean reference; textured images bias it slightly upwards.
    """
    noisy = np.asarray(noisy, dtype=np.float32)
    if noisy.ndim != 3:
        raise ValueError(f"expected an HWC image, got shape {noisy.shape}")
    if min(noisy.shape[:2]) < 4:
        raise ValueError("the noise estimate needs an image of at least 4x4 pixels")
    per_channel = estimate_sigma(noisy, channel_axis=-1, average_sigmas=False)
    return float(np.mean(per_channel) * 255.0)
