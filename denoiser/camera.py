"""A camera's noise as its JPEG shows it, with settings fitted to real cameras.

The sensor part follows Brooks et al., "Unprocessing Images for Learned Raw Denoising"
(CVPR 2019): a clean sRGB image goes back to linear light and an RGGB mosaic, where
shot and read noise are added, and is demosaiced again. What the camera then does to
that noise is what makes a JPEG's noise what it is, and what CBDNet (Guo et al., CVPR
2019) models with its JPEG step: in-camera noise reduction, stronger on colour than on
brightness, sharpening, and JPEG with its chroma subsampling. Measured on the four
PolyU cameras (docs/noise.md), real noise is correlated over several pixels (0.56 to
0.77 at one pixel, 0.16 to 0.42 at four) and its luminance part is 1.6 to 3 times its
colour part; the sensor alone gives nearly white, colour-dominant noise.

The noise is made apart from the image and added to it: `shoot` returns `clean` plus
the camera's noise as its JPEG keeps it, so that the only thing between a training pair
is the noise, never a second demosaicing of an image demosaiced already, nor the JPEG
blocks of the image itself (a real pair's clean mean has those too).
"""

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from .errors import DenoiserError

# Brooks et al.'s read-noise line in log-log space against the shot-noise variance.
READ_LOG_SLOPE, READ_LOG_OFFSET = 2.18, 1.20
SHOT_PER_ISO = 1e-6
MAX_ISO = 25600
RED_GAIN, BLUE_GAIN = (1.9, 2.4), (1.5, 1.9)
DEMOSAICS = {"bilinear": cv2.COLOR_BayerRGGB2RGB, "edge_aware": cv2.COLOR_BayerRGGB2RGB_EA}


def srgb_to_linear(image):
    """Inverse of Brooks et al.'s smoothstep tone curve, then of the sRGB gamma."""
    toned = 0.5 - np.sin(np.arcsin(1.0 - 2.0 * np.clip(image, 0.0, 1.0)) / 3.0)
    return np.where(toned <= 0.04045, toned / 12.92, ((toned + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(linear):
    """The sRGB gamma, then Brooks et al.'s smoothstep tone curve."""
    linear = np.clip(linear, 0.0, 1.0)
    gamma = np.where(linear <= 0.0031308, linear * 12.92, 1.055 * linear ** (1 / 2.4) - 0.055)
    return 3.0 * gamma**2 - 2.0 * gamma**3


def mosaic(rgb):
    """RGGB Bayer mosaic of an RGB image with even height and width."""
    raw = np.empty(rgb.shape[:2], rgb.dtype)
    raw[0::2, 0::2] = rgb[0::2, 0::2, 0]
    raw[0::2, 1::2] = rgb[0::2, 1::2, 1]
    raw[1::2, 0::2] = rgb[1::2, 0::2, 1]
    raw[1::2, 1::2] = rgb[1::2, 1::2, 2]
    return raw


def noise_variances(iso: float, read_scale: float = 1.0) -> tuple[float, float]:
    """(shot, read) variances of the linear raw signal at an ISO-like level; the read
    variance is Brooks et al.'s line times `read_scale`."""
    shot = SHOT_PER_ISO * iso
    read = float(np.exp(READ_LOG_SLOPE * np.log(shot) + READ_LOG_OFFSET)) * read_scale if shot > 0 else 0.0
    return shot, read


def demosaic(raw, method):
    """An RGB image from an RGGB mosaic in [0, 1], by OpenCV's `method` (DEMOSAICS)."""
    raw16 = np.rint(np.clip(raw, 0.0, 1.0) * 65535).astype(np.uint16)
    return cv2.cvtColor(raw16, DEMOSAICS[method]).astype(np.float64) / 65535


@dataclass(frozen=True)
class CameraSettings:
    """One camera at one exposure.

    iso, read_scale : the sensor's shot noise (`noise_variances`) and its read noise
        relative to Brooks et al.'s line.
    demosaic : a key of DEMOSAICS.
    luma_nr, chroma_nr : the in-camera noise reduction's strength (0 to 1) on the
        noise's brightness and colour parts: that share of each is replaced by its
        Gaussian blur, which leaves a white part and a correlated one, as real noise has.
    luma_blur, chroma_blur : the std in pixels of those Gaussians.
    sharpen : unsharp masking of the brightness part (0: none, 1: doubled detail).
    jpeg_quality : 1 to 100 with 4:2:0 chroma, or None for no JPEG.
    """
    iso: float = 1600.0
    read_scale: float = 1.0
    demosaic: str = "bilinear"
    luma_nr: float = 0.0
    luma_blur: float = 1.0
    chroma_nr: float = 0.0
    chroma_blur: float = 1.0
    sharpen: float = 0.0
    jpeg_quality: int | None = 90

    def __post_init__(self):
        _check_range("iso", self.iso, 0, MAX_ISO)
        if self.demosaic not in DEMOSAICS:
            raise DenoiserError(f"unknown demosaic {self.demosaic!r}; choose one of {sorted(DEMOSAICS)}")
        for name in ("read_scale", "luma_blur", "chroma_blur", "sharpen"):
            _check_range(name, getattr(self, name), 0, 100)
        for name in ("luma_nr", "chroma_nr"):
            _check_range(name, getattr(self, name), 0, 1)
        if self.jpeg_quality is not None:
            _check_range("jpeg_quality", self.jpeg_quality, 1, 100)


def _check_range(name, value, low, high):
    if not (low <= value <= high):
        raise DenoiserError(f"{name} must be in [{low}, {high}], got {value}")


def _blur(image, sigma):
    return cv2.GaussianBlur(image, (0, 0), sigma) if sigma > 0 else image


def _reduce(noise, strength, sigma):
    return noise + strength * (_blur(noise, sigma) - noise) if strength > 0 else noise


def sensor_noise(clean, settings, rng):
    """The noise the sensor and the demosaicing leave in the sRGB image (float64):
    the shot of `clean` less the same camera's noise-free rendering."""
    height, width = clean.shape[:2]
    # Demosaicing needs whole 2x2 cells and some context: pad by reflection, crop back.
    pad_h, pad_w = max(4 - height, 0) + (height % 2), max(4 - width, 0) + (width % 2)
    rgb = np.pad(clean, [(0, pad_h), (0, pad_w), (0, 0)], mode="symmetric").astype(np.float64)
    gains = np.array([rng.uniform(*RED_GAIN), 1.0, rng.uniform(*BLUE_GAIN)])
    raw = mosaic(srgb_to_linear(rgb) / gains)
    shot, read = noise_variances(settings.iso, settings.read_scale)
    noisy_raw = raw + rng.standard_normal(raw.shape) * np.sqrt(shot * raw + read)
    rendered = linear_to_srgb(demosaic(raw, settings.demosaic) * gains)
    noisy = linear_to_srgb(demosaic(noisy_raw, settings.demosaic) * gains)
    return (noisy - rendered)[:height, :width]


def processed_noise(noise, settings):
    """The in-camera noise reduction and sharpening applied to sensor noise (HWC,
    float): the brightness part (the channel mean) and the colour part apart."""
    luma = noise.mean(axis=-1)
    chroma = _reduce(noise - luma[..., None], settings.chroma_nr, settings.chroma_blur)
    luma = _reduce(luma, settings.luma_nr, settings.luma_blur)
    if settings.sharpen > 0:
        luma = luma + settings.sharpen * (luma - _blur(luma, 1.0))
    return luma[..., None] + chroma


def jpeg(image, quality):
    """An RGB float image in [0, 1] through 8 bits and JPEG at `quality` (4:2:0)."""
    quantized = np.rint(np.clip(image, 0.0, 1.0) * 255).astype(np.uint8)
    ok, encoded = cv2.imencode(".jpg", np.ascontiguousarray(quantized[..., ::-1]),
                               [cv2.IMWRITE_JPEG_QUALITY, int(quality),
                                cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_420])
    decoded = cv2.imdecode(encoded, cv2.IMREAD_COLOR) if ok else None
    if decoded is None:
        raise DenoiserError(f"OpenCV could not round-trip a {image.shape[1]}x{image.shape[0]} image through JPEG")
    return decoded[..., ::-1] / 255.0


def shoot(clean: np.ndarray, settings: CameraSettings, *, rng: np.random.Generator) -> np.ndarray:
    """`clean` (float HWC in [0, 1], 1 or 3 channels) as the camera `settings` would
    have saved it: its sensor noise (`sensor_noise`), reduced and sharpened in camera
    (`processed_noise`), added to `clean`, with what 8 bits and JPEG make of it
    (JPEG of the noisy image less JPEG of `clean`), clipped to [0, 1]. A gray image goes
    through as three equal channels and comes back as their mean.

    Examples
    --------
    >>> import numpy as np
    >>> flat = np.full((64, 64, 3), 0.5, np.float32)
    >>> noisy = shoot(flat, CameraSettings(iso=3200), rng=np.random.default_rng(0))
    >>> noisy.shape, noisy.dtype, bool(noisy.std() > 0)
    ((64, 64, 3), dtype('float32'), True)
    """
    if not isinstance(rng, np.random.Generator):
        raise DenoiserError("rng must be a numpy.random.Generator, e.g. numpy.random.default_rng(0)")
    clean = np.asarray(clean, dtype=np.float32)
    if clean.ndim != 3 or clean.shape[2] not in (1, 3):
        raise DenoiserError(f"expected an HxWx1 or HxWx3 image, got shape {clean.shape}")
    gray = clean.shape[2] == 1
    rgb = np.repeat(clean, 3, axis=2) if gray else clean
    noisy = rgb + processed_noise(sensor_noise(rgb, settings, rng), settings)
    if settings.jpeg_quality is not None:
        # What JPEG does to the noise, not to the image: a real pair's clean mean is a
        # JPEG of the same scene too, so its difference holds the first alone.
        noisy = rgb + jpeg(noisy, settings.jpeg_quality) - jpeg(rgb, settings.jpeg_quality)
    noisy = np.clip(noisy, 0.0, 1.0).astype(np.float32)
    return noisy.mean(axis=2, keepdims=True) if gray else noisy


@dataclass(frozen=True)
class CameraRange:
    """A box of settings, each number drawn on its own: (low, high) for each (ISO
    log-uniformly, the rest uniformly), and the demosaicing methods to choose among.
    Round 5's first runs drew from it (their records keep it); drawn on their own, the
    numbers make cameras unlike any measured one (weak noise reduction with strong
    sharpening: 0.17 at 2 pixels where the cameras have 0.23 to 0.45), so new runs
    and the demo draw blends of the fitted cameras instead (`CameraBlend`)."""
    iso: tuple = (400.0, 6400.0)
    read_scale: tuple = (0.5, 2.0)
    luma_nr: tuple = (0.0, 0.9)
    luma_blur: tuple = (0.5, 3.0)
    chroma_nr: tuple = (0.5, 1.0)
    chroma_blur: tuple = (0.5, 4.0)
    sharpen: tuple = (0.0, 1.0)
    jpeg_quality: tuple = (80, 98)
    demosaics: tuple = ("bilinear", "edge_aware")

    def sample(self, rng: np.random.Generator) -> CameraSettings:
        """Settings drawn from this box."""
        def uniform(name):
            low, high = getattr(self, name)
            return float(rng.uniform(low, high))

        iso = float(np.exp(rng.uniform(*np.log(self.iso))))
        return CameraSettings(
            iso=iso, read_scale=uniform("read_scale"), demosaic=str(rng.choice(self.demosaics)),
            luma_nr=uniform("luma_nr"), luma_blur=uniform("luma_blur"), chroma_nr=uniform("chroma_nr"),
            chroma_blur=uniform("chroma_blur"), sharpen=uniform("sharpen"), jpeg_quality=int(round(uniform("jpeg_quality"))))


# The fitted settings of each measured camera, written by benchmarks/fit_camera_noise.py.
FITTED = Path(__file__).with_name("cameras.json")
# Every level a photo may have: the fitted cameras fix how the noise looks, not how
# much of it there is (the PolyU scenes span ISO 1600 to 6400 on their own cameras).
ISO_SPAN = (100.0, 12800.0)
# JPEG qualities of cameras and phones at their default settings, as their files'
# tables say (the four measured cameras: 90 to 98). Lower qualities are no camera's
# own: at 75 the requantized image, not the noise, is most of what a pair differs by.
JPEG_SPAN = (88, 98)
# Each number of a blend is moved by up to this share of itself, so that cameras a
# little beyond the measured ones are drawn too.
JITTER = 0.25
_BLENDED = ("read_scale", "luma_nr", "luma_blur", "chroma_nr", "chroma_blur", "sharpen")


@dataclass(frozen=True)
class CameraBlend:
    """Cameras drawn as blends of measured ones: weights from a flat Dirichlet over
    `cameras` (CameraSettings as dicts), each blended number then jittered by up to
    JITTER of itself, the demosaicing of the heaviest camera, any ISO of ISO_SPAN
    (log-uniformly) and any JPEG quality of JPEG_SPAN."""
    cameras: tuple

    def sample(self, rng: np.random.Generator, *, iso: float | None = None) -> CameraSettings:
        weights = rng.dirichlet(np.ones(len(self.cameras)))
        blended = {name: float(sum(w * camera[name] for w, camera in zip(weights, self.cameras))
                               * rng.uniform(1 - JITTER, 1 + JITTER)) for name in _BLENDED}
        for name in ("luma_nr", "chroma_nr"):
            blended[name] = min(1.0, blended[name])
        drawn_iso = float(np.exp(rng.uniform(*np.log(ISO_SPAN))))
        return CameraSettings(iso=drawn_iso if iso is None else float(iso), **blended,
                              demosaic=self.cameras[int(np.argmax(weights))]["demosaic"],
                              jpeg_quality=int(rng.integers(JPEG_SPAN[0], JPEG_SPAN[1] + 1)))

    def as_dict(self) -> dict:
        return {"cameras": [dict(camera) for camera in self.cameras]}


def fitted_cameras() -> dict:
    """{camera: its fitted `CameraSettings`}, as benchmarks/fit_camera_noise.py wrote them."""
    cameras = json.loads(FITTED.read_text())["cameras"]
    return {name: CameraSettings(**entry["settings"]) for name, entry in cameras.items()}


def fitted_blend(*, exclude=()) -> CameraBlend:
    """Blends of every fitted camera but those in `exclude`: what new training runs,
    `add-noise --type camera` and the demo draw from.

    Examples
    --------
    >>> len(fitted_blend(exclude=["canon80d"]).cameras) == len(fitted_cameras()) - 1
    True
    """
    kept = [asdict(settings) for name, settings in fitted_cameras().items() if name not in set(exclude)]
    if not kept:
        raise DenoiserError(f"no fitted camera is left once {', '.join(exclude)} is excluded")
    return CameraBlend(tuple(kept))


def sampler(recorded: dict):
    """The sampler a training run recorded (`RealConfig.camera_range`): a blend of
    cameras, or round 5's first box."""
    return CameraBlend(tuple(recorded["cameras"])) if "cameras" in recorded else CameraRange(**recorded)


def sample_camera(rng: np.random.Generator, *, iso: float | None = None, exclude=()) -> CameraSettings:
    """A camera drawn from the fitted cameras (`fitted_blend`), at `iso` if given: the
    one sampler behind training, `add-noise --type camera` and the demo.

    Examples
    --------
    >>> import numpy as np
    >>> sample_camera(np.random.default_rng(0), iso=800).iso
    800.0
    """
    return fitted_blend(exclude=exclude).sample(rng, iso=iso)
