"""Synthetic noise models, as pure functions of a clean image and an explicit RNG.

Images are float32 in [0, 1], HWC. Gaussian levels are on the 0-255 scale, as in
the denoising literature. Only `gaussian` may leave [0, 1] (with `clip=False`),
because the evaluation protocol feeds the model unclipped noisy floats.

`camera` simulates what a camera does to the noise of a photo, after Brooks et al.,
"Unprocessing Images for Learned Raw Denoising" (CVPR 2019), and the JPEG step of
CBDNet (Guo et al., "Toward Convolutional Blind Denoising of Real Photographs",
CVPR 2019): the noise is added to a Bayer mosaic in linear light, where it is
Poisson-Gaussian, and the demosaicing, tone curve and JPEG make it depend on the
signal and correlate it between neighbours.
"""

from typing import Callable, NamedTuple

import cv2
import numpy as np

from . import camera as camera_model
from .errors import DenoiserError
from .profile import NoiseProfile, estimate_level, profile  # noqa: F401  (the noise's verbs in one place)


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


def gaussian(clean: np.ndarray, sigma: float, *, rng: np.random.Generator, clip: bool = False) -> np.ndarray:
    """Additive white Gaussian noise with standard deviation `sigma` / 255."""
    clean = _check(clean, rng)
    _check_range("sigma", sigma, 0, 255)
    noisy = rng.standard_normal(clean.shape, dtype=np.float32)
    noisy *= np.float32(sigma / 255.0)
    noisy += clean
    return np.clip(noisy, 0.0, 1.0, out=noisy) if clip else noisy


def poisson(clean: np.ndarray, peak: float, *, rng: np.random.Generator) -> np.ndarray:
    """Shot noise: each pixel counts Poisson photons with mean `peak` * intensity."""
    clean = _check(clean, rng)
    if not peak > 0:
        raise ValueError(f"peak must be positive, got {peak}")
    counts = rng.poisson(np.clip(clean, 0.0, 1.0) * peak)
    return np.clip(counts / peak, 0.0, 1.0).astype(np.float32)


def salt_and_pepper(clean: np.ndarray, amount: float, *, rng: np.random.Generator,
                    salt_ratio: float = 0.5) -> np.ndarray:
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


def speckle(clean: np.ndarray, sigma: float, *, rng: np.random.Generator) -> np.ndarray:
    """Multiplicative noise: clean * (1 + n), n ~ N(0, (sigma/255)^2)."""
    clean = _check(clean, rng)
    _check_range("sigma", sigma, 0, 255)
    noisy = rng.standard_normal(clean.shape, dtype=np.float32)
    noisy *= np.float32(sigma / 255.0)
    noisy += 1.0
    noisy *= clean
    return np.clip(noisy, 0.0, 1.0, out=noisy)


def random_impulse(clean: np.ndarray, amount: float, *, rng: np.random.Generator) -> np.ndarray:
    """Replaces a fraction `amount` of samples with uniform random values."""
    clean = _check(clean, rng)
    _check_range("amount", amount, 0, 1)
    hit = rng.random(clean.shape) < amount
    noisy = clean.copy()
    noisy[hit] = rng.random(int(hit.sum())).astype(np.float32)
    return noisy


# Brooks et al. draw the shot-noise variance log-uniformly in [1e-4, 1.2e-2] and the
# read-noise variance from a line in log-log space fitted to real sensors
# (`camera.noise_variances`).
RED_GAIN, BLUE_GAIN = camera_model.RED_GAIN, camera_model.BLUE_GAIN


def camera_noise_variances(iso: float) -> tuple[float, float]:
    """(shot, read) variances of the linear raw signal at an ISO-like level."""
    return camera_model.noise_variances(iso)


def camera(clean: np.ndarray, iso: float, *, rng: np.random.Generator, jpeg_quality: int | None = 90) -> np.ndarray:
    """A clean sRGB image as a camera at `iso` (0 to 25600) would have photographed it.

    Inverse tone curve and gamma to linear light, inverse white balance with gains
    drawn from `rng`, an RGGB mosaic, shot and read noise (variance
    shot * signal + read, with shot = iso * 1e-6 as in Brooks et al.), OpenCV's
    demosaicing, the white balance, gamma and tone curve again, and JPEG at
    `jpeg_quality` (1-100; None skips it). A gray image goes through the same
    camera as three equal channels and comes back as their mean.
    """
    clean = _check(clean, rng)
    _check_range("iso", iso, 0, camera_model.MAX_ISO)
    if jpeg_quality is not None:
        _check_range("jpeg_quality", jpeg_quality, 1, 100)
    if clean.shape[2] not in (1, 3):
        raise ValueError(f"expected 1 or 3 channels, got {clean.shape[2]}")
    gray = clean.shape[2] == 1
    rgb = np.repeat(clean, 3, axis=2) if gray else clean
    height, width = rgb.shape[:2]
    # Demosaicing needs whole 2x2 cells and some context: pad by reflection, crop back.
    pad_h, pad_w = max(4 - height, 0) + (height % 2), max(4 - width, 0) + (width % 2)
    rgb = np.pad(rgb, [(0, pad_h), (0, pad_w), (0, 0)], mode="symmetric")
    gains = np.array([rng.uniform(*RED_GAIN), 1.0, rng.uniform(*BLUE_GAIN)])
    raw = camera_model.mosaic(camera_model.srgb_to_linear(rgb.astype(np.float64)) / gains)
    shot, read = camera_noise_variances(iso)
    raw = raw + rng.standard_normal(raw.shape) * np.sqrt(shot * raw + read)
    raw16 = np.rint(np.clip(raw, 0.0, 1.0) * 65535).astype(np.uint16)
    linear = cv2.cvtColor(raw16, cv2.COLOR_BayerRGGB2RGB).astype(np.float64) / 65535 * gains
    noisy = camera_model.linear_to_srgb(linear)[:height, :width]
    if jpeg_quality is not None:
        quantized = np.rint(np.clip(noisy, 0.0, 1.0) * 255).astype(np.uint8)
        ok, encoded = cv2.imencode(".jpg", quantized[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)])
        decoded = cv2.imdecode(encoded, cv2.IMREAD_COLOR)
        if not ok or decoded is None:
            raise DenoiserError(f"OpenCV could not round-trip a {width}x{height} image through JPEG")
        noisy = decoded[..., ::-1] / 255.0
    noisy = noisy.astype(np.float32)
    return noisy.mean(axis=2, keepdims=True) if gray else noisy


def camera_pair(clean: np.ndarray, iso: float, *, rng: np.random.Generator,
                jpeg_quality: int | None = 90) -> tuple[np.ndarray, np.ndarray]:
    """(the `camera` shot of `clean` at `iso`, the same camera's noise-free rendering:
    ISO 0, no JPEG). Their difference is the camera's noise and compression alone.
    Raises ValueError as `camera` does."""
    seed = int(rng.integers(2**32))
    noisy = camera(clean, iso, rng=np.random.default_rng(seed), jpeg_quality=jpeg_quality)
    # The same seed draws the same white balance; at ISO 0 the camera adds no noise.
    rendered = camera(clean, 0.0, rng=np.random.default_rng(seed), jpeg_quality=None)
    return noisy, rendered


def camera_noise(clean: np.ndarray, iso: float, *, rng: np.random.Generator,
                 jpeg_quality: int | None = 90) -> np.ndarray:
    """`clean` with the noise of a camera at `iso`: the shot less its noise-free
    rendering (`camera_pair`), added to `clean` and clipped to [0, 1] as an image.

    The simulated rendering alone (demosaicing an image that was demosaiced already)
    costs a textured photo about 28.5 dB (12 CBSD68 images), more than the noise of
    ISO 1600; it is not noise, and no denoiser should undo it, so the demo leaves it
    out, and what it scores against `clean` is the noise. Raises ValueError as
    `camera` does.
    """
    noisy, rendered = camera_pair(clean, iso, rng=rng, jpeg_quality=jpeg_quality)
    return np.clip(_check(clean, rng) + (noisy - rendered), 0.0, 1.0).astype(np.float32)


def fitted_camera(clean: np.ndarray, iso: float, *, rng: np.random.Generator) -> np.ndarray:
    """`clean` as a camera drawn from the fitted range (`camera.sample_camera`) at `iso`
    (0 to 25600) would save it: noise correlated over several pixels and mostly in
    brightness, as the measured cameras' is (docs/noise.md), then JPEG."""
    clean = _check(clean, rng)
    return camera_model.shoot(clean, camera_model.sample_camera(rng, iso=iso), rng=rng)


class NoiseType(NamedTuple):
    """A noise type: its function, the map from a 0-255 level to the function's options,
    its title in the app, and the demo's level."""
    function: Callable
    parameters: Callable  # level (0-255) -> the function's keyword options
    title: str
    # Where the demo's slider starts, and the level `evaluate --noise` measures by default.
    demo_level: float = 25.0

    def apply(self, clean: np.ndarray, level: float, *, rng: np.random.Generator) -> np.ndarray:
        """`clean` with this noise at `level` on the 0-255 scale (unchecked: `add_noise`
        checks a person's level)."""
        return self.function(clean, rng=rng, **self.parameters(level))


# Every noise type, with what the app and the CLI call it: a level on the 0-255 scale
# (`check_level`) maps to each function's own parameter.
NOISE_TYPES = {
    "gaussian": NoiseType(gaussian, lambda level: {"sigma": level}, "Gaussian"),
    # A level of 1 is ISO 100 (16 is ISO 1600).
    "camera": NoiseType(fitted_camera, lambda level: {"iso": 100.0 * level}, "Camera (ISO)", demo_level=16.0),
    "poisson": NoiseType(poisson, lambda level: {"peak": max(1.0, (255.0 / max(level, 1e-3)) ** 2 / 4.0)}, "Poisson"),
    "salt_and_pepper": NoiseType(salt_and_pepper, lambda level: {"amount": min(1.0, level / 255.0)},
                                 "Salt and pepper"),
    "speckle": NoiseType(speckle, lambda level: {"sigma": level}, "Speckle"),
    "random_impulse": NoiseType(random_impulse, lambda level: {"amount": min(1.0, level / 255.0)}, "Random impulse"),
}


def check_level(level: float) -> None:
    """A slider level must lie in [0, 255] (NaN does not)."""
    if not 0 <= level <= 255:
        raise DenoiserError(f"noise level must be in [0, 255], got {level}")


def add_noise(clean: np.ndarray, kind: str, level: float, *, rng: np.random.Generator) -> np.ndarray:
    """Adds noise of type `kind` at a slider `level` on the 0-255 scale.

    Gaussian noise is clipped here, since the result is shown and saved as an image.
    """
    try:
        noise_type = NOISE_TYPES[kind]
    except KeyError:
        raise DenoiserError(f"unknown noise type {kind!r}; choose one of {sorted(NOISE_TYPES)}") from None
    check_level(level)
    if kind == "gaussian":
        return gaussian(clean, level, rng=rng, clip=True)
    return noise_type.apply(clean, level, rng=rng)
