"""What a photo's noise is: its level against brightness, its correlation between
neighbours, its luminance and colour parts, and one number for its level.

The figures are those of `../shared/README.md` ("Real noise statistics"), so that a
synthesizer's noise and a camera's compare: for a pair the noise is `noisy - clean`
on the 0-255 scale with each channel's mean removed; the correlation at k pixels is
the Pearson correlation of horizontal neighbours k apart, all channels together; the
luma/chroma ratio is `luma.std() / chroma.std()` with `luma` the channel mean.

Without a clean image the noise is read in the photo's flattest blocks, each less a
quadratic surface fitted to it (light falls off smoothly; noise does not). A camera's JPEG noise
is correlated over several pixels and its finest band is what JPEG removes first, so
the estimators made for white noise (Donoho's wavelet median, the PCA of Chen et
al., ICCV 2015) read a fifth or less of it; a surface-free block keeps every band wider
than a pixel and narrower than the block.
"""

from dataclasses import asdict, dataclass

import numpy as np

from .errors import DenoiserError

LAGS = (1, 2, 4, 8)
LEVEL_BINS = 8
# Blocks of 16 pixels hold the noise's correlation (1 to 4 pixels) several times over
# and are small enough to be flat in a photo. On the 35 PolyU scenes, the log of the
# estimate's ratio to the true std spread 0.35 with blocks of 16, 0.37 with 32 and
# 8 (`benchmarks/noise_profiles.py --variants`).
BLOCK = 16
# A profile read from the photo alone takes blocks of 32, so that the correlation at 8
# pixels has room; the surface taken from each still lowers its wider correlations.
PROFILE_BLOCK = 32
# The flattest blocks are the 2nd to the 20th percentile of the surface-free spread:
# lower ones are clipped highlights and black, higher ones have texture.
FLAT_QUANTILES = (0.02, 0.20)
# The flattest blocks read the noise low (they are chosen for a low spread, and are
# darker or brighter than the photo on average); this factor makes the estimate the
# std of the whole photo's noise against its drift-free mean. Fitted on the four PolyU
# cameras' 35 scenes (`benchmarks/noise_profiles.py`, which checks it leaving one
# camera out).
LEVEL_FACTOR = 2.30
# A photo whose blocks read less than this is clean for the estimate: the rounding of
# 8-bit values alone (std 0.29) and a clean JPEG's ringing stay under it.
CLEAN_FLOOR = 0.5
ESTIMATE_SIDE = 2048


@dataclass(frozen=True)
class NoiseProfile:
    """A photo's noise, on the 0-255 scale.

    Attributes
    ----------
    std : float
        The noise's standard deviation over all pixels and channels.
    levels : tuple of tuple of float
        The noise level function: for each intensity bin (`bins`), the std per channel
        (NaN where the bin has too few pixels).
    bins : tuple of float
        The centres of the intensity bins, 0-255.
    correlation : dict
        The correlation of horizontal neighbours at 1, 2, 4 and 8 pixels.
    luma_std, chroma_std : float
        The std of the noise's channel mean, and of what is left of each channel.
    jpeg_quality : int or None
        The JPEG quality the file's quantization tables say, where it is a JPEG.
    measured : bool
        True for `noisy - clean`, False for an estimate from the photo alone.
    """
    std: float
    levels: tuple
    bins: tuple
    correlation: dict
    luma_std: float
    chroma_std: float
    jpeg_quality: int | None = None
    measured: bool = True

    @property
    def luma_chroma(self) -> float:
        """`luma_std / chroma_std` (inf for a gray photo)."""
        return self.luma_std / self.chroma_std if self.chroma_std > 0 else float("inf")

    def as_dict(self) -> dict:
        """The profile as plain JSON-ready values."""
        out = asdict(self)
        out["correlation"] = {str(k): v for k, v in self.correlation.items()}
        out["luma_chroma"] = self.luma_chroma
        return out


def _as_255(image, name):
    image = np.asarray(image, dtype=np.float32)
    if image.ndim != 3 or image.shape[2] not in (1, 3):
        raise DenoiserError(f"{name} must be an HxWx1 or HxWx3 image, got shape {image.shape}")
    return image * np.float32(255)


def _correlation(noise, lag):
    if noise.shape[-2] <= lag:
        return float("nan")
    a, b = noise[..., :-lag, :].ravel(), noise[..., lag:, :].ravel()
    a, b = a - a.mean(), b - b.mean()
    denominator = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / denominator) if denominator > 0 else 0.0


def _level_function(noise, brightness):
    """Per intensity bin of `brightness` (0-255), the std of each channel of `noise`."""
    edges = np.linspace(0, 255, LEVEL_BINS + 1)
    index = np.clip(np.digitize(brightness, edges) - 1, 0, LEVEL_BINS - 1)
    levels = []
    for b in range(LEVEL_BINS):
        inside = noise[index == b]
        # Fewer than a few hundred samples gives a std that is mostly chance.
        levels.append(tuple(float(v) for v in inside.std(axis=0)) if len(inside) >= 256
                      else (float("nan"),) * noise.shape[-1])
    return tuple(levels), tuple(float(c) for c in (edges[:-1] + edges[1:]) / 2)


def _luma_chroma(noise):
    luma = noise.mean(axis=-1)
    chroma = noise - luma[..., None]
    return float(luma.std()), float(chroma.std())


def _from_noise(noise, brightness, jpeg_quality, measured):
    """The profile of noise samples: `noise` HxWxC, or blocks NxHxWxC (the correlation
    stays within a block), with `brightness` its shape less the channels."""
    noise = noise - noise.reshape(-1, noise.shape[-1]).mean(axis=0)
    levels, bins = _level_function(noise.reshape(-1, noise.shape[-1]), brightness.ravel())
    luma, chroma = _luma_chroma(noise)
    return NoiseProfile(
        std=float(noise.std()), levels=levels, bins=bins,
        correlation={lag: _correlation(noise, lag) for lag in LAGS},
        luma_std=luma, chroma_std=chroma, jpeg_quality=jpeg_quality, measured=measured)


def _centre(image, side=ESTIMATE_SIDE):
    h, w = image.shape[:2]
    top, left = max(0, (h - side) // 2), max(0, (w - side) // 2)
    return image[top : top + side, left : left + side]


def _surface_free_blocks(image, block):
    """(blocks less their own least-squares quadratic surface per channel, each block's
    mean), of the whole blocks of `image` (0-255): shapes (n, block, block, C) and
    (n, C). A quadratic, not a plane: the flattest parts of a photo are often smooth
    curves of light (a defocused background, a vignette), which a plane leaves behind as
    noise (a smooth synthetic photo read 7.0 with planes, 1.5 with quadratics)."""
    h, w, c = image.shape
    rows, cols = h // block, w // block
    blocks = image[: rows * block, : cols * block].reshape(rows, block, cols, block, c)
    blocks = blocks.transpose(0, 2, 1, 3, 4).reshape(rows * cols, block * block, c).astype(np.float64)
    y, x = (np.mgrid[0:block, 0:block].astype(np.float64) - (block - 1) / 2) / block
    basis = np.stack([np.ones_like(x), y, x, x * x, y * y, x * y], axis=-1).reshape(-1, 6)
    # The six coefficients of each block, then the surface they make: two thin products,
    # not one block-by-block projection (0.9 s against 6.3 s for a 12 MP photo here).
    coefficients = np.einsum("kp,npc->nkc", np.linalg.pinv(basis), blocks)
    residual = blocks - np.einsum("pk,nkc->npc", basis, coefficients)
    return residual.reshape(rows * cols, block, block, c), blocks.mean(axis=1)


def flat_blocks(noisy, *, block=BLOCK):
    """The flattest blocks of a photo (0-255 HWC), each less its quadratic surface, and
    their means: those between FLAT_QUANTILES of the blocks' spread."""
    block = min(block, *noisy.shape[:2])
    residual, means = _surface_free_blocks(noisy, block)
    spread = residual.reshape(len(residual), -1).std(axis=1)
    order = np.argsort(spread)
    low, high = (int(q * (len(order) - 1)) for q in FLAT_QUANTILES)
    chosen = order[low : high + 1]
    # Blocks clipped at black or white hide their noise: they are no evidence of a level.
    unclipped = [i for i in chosen if 2 < means[i].min() and means[i].max() < 253]
    chosen = np.array(unclipped or chosen)
    return residual[chosen], means[chosen]


def estimate_level(noisy: np.ndarray) -> float:
    """The std of a photo's noise on the 0-255 scale, from the photo alone.

    The mean surface-free spread of the flattest blocks (`flat_blocks`) times
    LEVEL_FACTOR; under CLEAN_FLOOR it reads 0. On at most the central 2048x2048
    pixels. A block keeps most of the noise's bands wider than a pixel, so correlated
    JPEG noise reads nearly as white noise of the same std would (noise blurred by a
    Gaussian of 1.2 pixels reads 0.77 times as high: the surface takes its widest
    part); LEVEL_FACTOR is fitted to
    camera photos, whose flattest blocks are their least noisy (noise depends on
    the signal), so noise of one level everywhere reads LEVEL_FACTOR times too high:
    this estimate is for photos, `metrics.estimate_noise_sigma` for added noise.

    Parameters
    ----------
    noisy : ndarray
        HxWx1 or HxWx3 float image in [0, 1].

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> flat = np.full((256, 256, 3), 0.5, np.float32)
    >>> estimate_level(flat)
    0.0
    >>> white = flat + rng.normal(0, 4 / 255, flat.shape).astype(np.float32)
    >>> round(estimate_level(white) / LEVEL_FACTOR)
    4
    """
    image = _centre(_as_255(noisy, "noisy"))
    if min(image.shape[:2]) < 2:
        raise DenoiserError(f"the noise estimate needs at least 2x2 pixels, got {image.shape[1]}x{image.shape[0]}")
    # An image smaller than a block is one block of its own size: a rougher estimate,
    # but no refusal of an 8-pixel icon.
    blocks, _ = flat_blocks(image)
    level = LEVEL_FACTOR * float(np.sqrt(np.mean(blocks.reshape(len(blocks), -1).var(axis=1))))
    return level if level >= CLEAN_FLOOR else 0.0


def profile(noisy: np.ndarray, clean: np.ndarray | None = None, *, jpeg_quality: int | None = None) -> NoiseProfile:
    """The profile of a photo's noise (`NoiseProfile`), on the 0-255 scale.

    With `clean` it measures `noisy - clean`; without it, it reads the noise in the
    flattest blocks of `noisy` (`flat_blocks`), each less its quadratic surface: its std is
    `estimate_level`'s calibrated reading, its level function and correlations those
    of the flattest blocks themselves (lower than the photo's: they are its least
    noisy parts, and each block's surface takes some of the widest correlation).

    Parameters
    ----------
    noisy, clean : ndarray
        HxWx1 or HxWx3 float images in [0, 1], of one shape.
    jpeg_quality : int, optional
        What the file says (`io.jpeg_quality`), carried into the profile.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> clean = np.full((256, 256, 3), 0.5, np.float32)
    >>> noisy = clean + rng.normal(0, 8 / 255, clean.shape).astype(np.float32)
    >>> p = profile(noisy, clean)
    >>> round(p.std, 1), abs(p.correlation[1]) < 0.02
    (8.0, True)
    """
    noisy_255 = _as_255(noisy, "noisy")
    if clean is not None:
        clean_255 = _as_255(clean, "clean")
        if clean_255.shape != noisy_255.shape:
            raise DenoiserError(f"noisy and clean differ in shape: {noisy_255.shape} and {clean_255.shape}")
        return _from_noise(noisy_255 - clean_255, clean_255.mean(axis=-1), jpeg_quality, True)
    image = _centre(noisy_255)
    if min(image.shape[:2]) < 8:
        raise DenoiserError(f"a noise profile needs at least 8x8 pixels, got {image.shape[1]}x{image.shape[0]}")
    # Wider blocks than the estimate's: a correlation at 8 pixels needs room.
    blocks, means = flat_blocks(image, block=PROFILE_BLOCK)
    brightness = np.broadcast_to(means.mean(axis=-1)[:, None, None], blocks.shape[:3])
    measured = _from_noise(blocks, brightness, jpeg_quality, False)
    return NoiseProfile(**{**asdict(measured), "std": estimate_level(noisy), "correlation": measured.correlation})
