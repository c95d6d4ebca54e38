"""Synthetic noise models, as pure functions of a clean image and an explicit RNG.

Images are float32 in [0, 1], HWC. Gaussian levels are on the 0-255 scale, as in
the denoising literature. Only `gaussian` may leave [0, 1] (with `clip=False`),
because the evaluation protocol feeds the model unclipped noisy floats.
"""

import numpy as np

from .errors import DenoiserError


def _check(clean, rng):
    if not isinstance(rng, np.random.Generator):
        raise ValueError("rng must be a numpy.random.Generator, e.g. numpy.random.default_rng(0)")
    clean = np.asarray(clean, dtype=np.float32)
    if clean.ndim != 3:
        raise ValueError(f"expected an HWC image, got shape {clean.shape}")
    return clean


def _check_range(name, value, low, high):
    if not (low <= value <= high):
        raise ValueError(f"{name} must be in [{low}, {high}], got {value}")


def gaussian(clean, sigma, *, rng, clip=False):
    """Additive white Gaussian noise with standard deviation `sigma` / 255."""
    clean = _check(clean, rng)
    _check_range("sigma", sigma, 0, 255)
    noisy = rng.standard_normal(clean.shape, dtype=np.float32)
    noisy *= np.float32(sigma / 255.0)
    noisy += clean
    return np.clip(noisy, 0.0, 1.0, out=noisy) if clip else noisy


def poisson(clean, peak, *, rng):
    """Shot noise: each pixel counts Poisson photons with mean `peak` * intensity."""
    clean = _check(clean, rng)
    if not peak > 0:
        raise ValueError(f"peak must be positive, got {peak}")
    counts = rng.poisson(np.clip(clean, 0.0, 1.0) * peak)
    return np.clip(counts / peak, 0.0, 1.0).astype(np.float32)


def salt_and_pepper(clean, amount, *, rng, salt_ratio=0.5):
    """Sets a fraction `amount` of pixels to 1 (salt) or 0 (pepper), all channels alike."""
    clean = _check(clean, rng)
    _check_range("amount", amount, 0, 1)
    _check_range("salt_ratio", salt_ratio, 0, 1)
    h, w, _ = clean.shape
    hit = rng.random((h, w)) < amount
    salt = rng.random((h, w)) < salt_ratio
    noisy = clean.copy()
    noisy[hit & salt] = 1.0
    noisy[hit & ~salt] = 0.0
    return noisy


def speckle(clean, sigma, *, rng):
    """Multiplicative noise: clean * (1 + n), n ~ N(0, (sigma/255)^2)."""
    clean = _check(clean, rng)
    _check_range("sigma", sigma, 0, 255)
    noisy = rng.standard_normal(clean.shape, dtype=np.float32)
    noisy *= np.float32(sigma / 255.0)
    noisy += 1.0
    noisy *= clean
    return np.clip(noisy, 0.0, 1.0, out=noisy)


def random_impulse(clean, amount, *, rng):
    """Replaces a fraction `amount` of samples with uniform random values."""
    clean = _check(clean, rng)
    _check_range("amount", amount, 0, 1)
    hit = rng.random(clean.shape) < amount
    noisy = clean.copy()
    noisy[hit] = rng.random(int(hit.sum())).astype(np.float32)
    return noisy


# The slider level (0-75) that the app and CLI expose maps to each model's parameter.
NOISE_TYPES = {
    "gaussian": (gaussian, lambda level: {"sigma": level}),
    "poisson": (poisson, lambda level: {"peak": max(1.0, (255.0 / max(level, 1e-3)) ** 2 / 4.0)}),
    "salt_and_pepper": (salt_and_pepper, lambda level: {"amount": min(1.0, level / 255.0)}),
    "speckle": (speckle, lambda level: {"sigma": level}),
    "random_impulse": (random_impulse, lambda level: {"amount": min(1.0, level / 255.0)}),
}


def add_noise(clean, kind, level, *, rng):
    """Adds noise of type `kind` at a slider `level` on the 0-255 scale.

    Gaussian noise is clipped here, since the result is shown and saved as an image.
    """
    try:
        fn, params = NOISE_TYPES[kind]
    except KeyError:
        raise DenoiserError(f"unknown noise type {kind!r}; choose one of {sorted(NOISE_TYPES)}") from None
    if not 0 <= level <= 255:
        raise DenoiserError(f"noise level must be in [0, 255], got {level}")
    if kind == "gaussian":
        return gaussian(clean, level, rng=rng, clip=True)
    return fn(clean, rng=rng, **params(level))
