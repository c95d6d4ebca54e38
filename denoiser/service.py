"""What the web app asks of the engine: samples, demo and noisy-photo runs,
model comparison, PSNR-against-level sweeps, views and downloads. No Streamlit
here: the pages lay out widgets and call these functions."""

import base64
import hashlib
import threading
import time
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass, field

import cv2
import numpy as np

from . import metrics
from .engine import check_image, denoise, level_for_noise
from .io import Picture, encode_image, to_float, to_integer
from .noise import add_noise
from .profile import estimate_level
from .session import SETTLED_PREFIX

SAMPLES = {
    "Astronaut": "astronaut",
    "Chelsea the cat": "chelsea",
    "Coffee": "coffee",
    "Rocket": "rocket",
    "Camera (gray)": "camera",
    "Hubble deep field": "hubble_deep_field",
    "Retina": "retina",
}


def load_sample(label):
    """A Picture of one of the images scikit-image installs."""
    from skimage import data

    values = getattr(data, SAMPLES[label])()
    values = values[..., None] if values.ndim == 2 else values[..., :3]
    return Picture(to_float(values), format="PNG")


def check_picture(picture):
    """`picture`, if the engine can take its pixels (`engine.check_image`)."""
    check_image(picture.pixels)
    return picture


def image_key(pixels):
    """A short hash of what the image is: its shape, its type and its content. The
    bytes alone are not enough: a 96x64 and a 64x96 photo of one gray have the same
    bytes, and one person would download the other's."""
    pixels = np.ascontiguousarray(pixels)
    digest = hashlib.sha1(f"{pixels.shape} {pixels.dtype}".encode())
    digest.update(pixels.view(np.uint8))
    return digest.hexdigest()[:16]


@dataclass
class Result:
    """One denoising run: uint8 images for display, the 16-bit result for the downloads
    of a 16-bit photo (None for an 8-bit one, whose downloads are the uint8 result),
    and the numbers."""

    noisy: np.ndarray
    denoised: np.ndarray
    denoised16: np.ndarray | None
    level_used: float
    seconds: float
    megapixels: float
    clean: np.ndarray | None = None
    psnr_noisy: float | None = None
    psnr_denoised: float | None = None
    ssim_noisy: float | None = None
    ssim_denoised: float | None = None
    estimated_level: float | None = None
    # Seconds per phase of the run, in order: what the page reports after it.
    phases: dict = field(default_factory=dict)

    @property
    def denoised_float(self):
        """The result at the precision of the photo's file, for downloads."""
        return to_float(self.denoised if self.denoised16 is None else self.denoised16)

    @property
    def megapixels_per_second(self):
        return self.megapixels / self.seconds if self.seconds > 0 else float("inf")

    @property
    def nbytes(self):
        arrays = [self.noisy, self.denoised, self.denoised16, self.clean]  # None for those not kept
        return sum(a.nbytes for a in arrays if a is not None)


def make_noisy(clean, kind, level, seed):
    """The demo's noisy image: `clean` with noise `kind` at `level`, from `seed`."""
    return add_noise(clean, kind, level, rng=np.random.default_rng(seed))


class Phases:
    """The seconds that each named phase of one run took; `announce(name)` hears each
    phase as it begins (a progress bar's text)."""

    def __init__(self, announce=None):
        self.seconds, self._announce = {}, announce

    @contextmanager
    def __call__(self, name):
        if self._announce is not None:
            self._announce(name)
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started


def run_demo(clean, runtime, *, kind, level, seed, bit_depth=8, progress=None, phase=None, ensemble=False):
    """Adds noise to a clean image, denoises it, and scores both against the clean one.
    `bit_depth` is the photo's, for its downloads; `progress(done, total)` counts tiles;
    `phase(name)` hears each phase begin; `ensemble` averages the eight flips and
    rotations (`engine.ensemble_denoise`)."""
    phases = Phases(phase)
    with phases("adding noise"):
        holder = [make_noisy(clean, kind, level, seed)]
        given = level_for_noise(holder[0], kind, level)
    result = _run(holder, runtime, given, bit_depth, progress, phases, owned=True, ensemble=ensemble)
    with phases("metrics"):
        # The protocol scores the uint8 images, which the result holds already.
        result.clean = to_integer(clean)
        noisy_scores, denoised_scores = metrics.scores(result.clean, [result.noisy, result.denoised])
        result.psnr_noisy, result.ssim_noisy = noisy_scores
        result.psnr_denoised, result.ssim_denoised = denoised_scores
    result.phases = phases.seconds
    return result


@dataclass(frozen=True)
class DenoiseRequest:
    """What the Denoise page asks for, and the key its result is cached under: the
    picture (by content), the model, and either the demo's added noise (`noise`,
    `level`, `seed`) or, for a photo that is already noisy, the `strength` to remove
    (None: the model is blind, or the estimate is wanted)."""

    picture: str
    model: str
    ensemble: bool = False
    noise: str | None = None
    level: float | None = None
    seed: int = 0
    strength: float | None = None

    @property
    def demo(self) -> bool:
        """Whether noise is added to a clean picture (else the picture is already noisy)."""
        return self.noise is not None

    @property
    def settled_key(self) -> str:
        """Where a page keeps the strength that the whole photo was last denoised at, for
        this picture, model and ensemble: a new strength previews until it is asked for."""
        return f"{SETTLED_PREFIX}{self.picture}_{self.model}_{self.ensemble}"

    def previews(self, settled: float | None) -> bool:
        """Whether this request shows a preview of its strength only: a noisy photo whose
        whole was denoised at another strength, `settled`, before (the first strength of
        a photo runs the whole photo at once)."""
        return not self.demo and settled is not None and self.strength != settled


def run_request(request, pixels, runtime, *, bit_depth=8, estimate=None, progress=None, phase=None):
    """The Result of `request` on `pixels` with `runtime` (`run_demo`, or
    `run_noisy_photo` with the photo's `estimate` where the caller has it)."""
    if request.demo:
        return run_demo(pixels, runtime, kind=request.noise, level=request.level, seed=request.seed,
                        bit_depth=bit_depth, progress=progress, phase=phase, ensemble=request.ensemble)
    return run_noisy_photo(pixels, runtime, level=request.strength, estimate=estimate, bit_depth=bit_depth,
                           progress=progress, phase=phase, ensemble=request.ensemble)


def photo_level(noisy):
    """The default strength for a photo that is already noisy: its estimated noise level."""
    return estimate_level(noisy)


def run_noisy_photo(noisy, runtime, *, level=None, estimate=None, bit_depth=8, progress=None, phase=None,
                    ensemble=False):
    """Denoises a photo that is already noisy at `level` (0-255 scale; default: the
    estimate, which a caller that has it already passes as `estimate`); nothing is
    added and nothing is scored. `bit_depth` is the photo's, for its downloads."""
    phases = Phases(phase)
    if estimate is None:
        with phases("estimating the noise"):
            estimate = photo_level(noisy)
    result = _run([noisy], runtime, float(estimate) if level is None else float(level), bit_depth, progress, phases,
                  ensemble=ensemble)
    result.estimated_level = float(estimate)
    result.phases = phases.seconds
    return result


def _run(holder, runtime, level, bit_depth, progress, phases, *, owned=False, ensemble=False):
    """The Result of denoising the image in the one-item list `holder`.

    A 12-megapixel photo is 144 MB in float32, and a small cloud host has little
    more than six such images of memory. So the image is taken out of `holder`, and
    each float image lives only until its integer form exists. An `owned` image (one
    that nobody else holds, such as the demo's noisy one) is denoised in place."""
    noisy = holder.pop()
    height, width = noisy.shape[:2]
    noisy_shown = to_integer(noisy)
    with phases("denoising"):
        denoised = denoise(noisy, runtime, level=level, progress=progress, out=noisy if owned else None,
                           ensemble=ensemble)
    del noisy
    with phases("preparing the images"):
        result = Result(
            noisy=noisy_shown, denoised=to_integer(denoised),
            denoised16=to_integer(denoised, 16) if bit_depth == 16 else None,
            level_used=level, seconds=phases.seconds["denoising"], megapixels=height * width / 1e6,
        )
    return result


class ResultCache:
    """Results by key, least recently used first out, within a byte budget of the
    results' `nbytes`; thread-safe, so one cache serves every browser session of a
    server process."""

    def __init__(self, max_bytes=400_000_000):
        self.max_bytes = max_bytes
        self._items = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key):
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
            return None

    def put(self, key, result):
        with self._lock:
            self._items[key] = result
            self._items.move_to_end(key)
            while len(self._items) > 1 and sum(getattr(r, "nbytes", 0) for r in self._items.values()) > self.max_bytes:
                self._items.popitem(last=False)

    def __len__(self):
        return len(self._items)


def residual_view(noisy, denoised, gain=4.0):
    """What the model removed (uint8 images in, uint8 out), amplified around mid-gray."""
    removed = noisy.astype(np.float32) - denoised.astype(np.float32)
    return to_integer(0.5 + gain * removed / 255.0)


def for_display(image):
    """uint8 HWC -> what st.image shows (2-D for gray)."""
    return image[..., 0] if image.shape[2] == 1 else image


def window(shape, center_x, center_y, size):
    """(top, left, size) of a size x size window at the centre (smaller in small
    images), clamped inside an image of `shape`."""
    h, w = shape[:2]
    size = min(size, h, w)
    return int(np.clip(center_y - size // 2, 0, h - size)), int(np.clip(center_x - size // 2, 0, w - size)), size


def crop(image, center_x, center_y, size):
    """The size x size window of `image` at the centre (see `window`)."""
    top, left, size = window(image.shape, center_x, center_y, size)
    return image[top : top + size, left : left + size]


def preview_window(noisy, runtime, *, level, center, size, ensemble=False):
    """(noisy, denoised) uint8 crops of one window of a photo that is already noisy,
    denoised at `level` with the runtime's tile margin of context around it: what
    the whole photo shows there (exactly, where the margin covers the model's reach),
    in a fraction of the time. A 256-pixel window of a 12 MP photo is 1/180 of it."""
    top, left, size = window(noisy.shape, *center, size)
    h, w = noisy.shape[:2]
    margin = runtime.margin
    y0, x0 = max(0, top - margin), max(0, left - margin)
    context = noisy[y0 : min(h, top + size + margin), x0 : min(w, left + size + margin)]
    denoised = denoise(context, runtime, level=level, ensemble=ensemble)
    inside = (slice(top - y0, top - y0 + size), slice(left - x0, left - x0 + size))
    return to_integer(noisy[top : top + size, left : left + size]), to_integer(denoised[inside])


def preview_overview(noisy, runtime, *, level, estimate, max_side, ensemble=False):
    """(noisy, denoised) uint8 copies of a photo that is already noisy, downscaled to
    `max_side`, the second denoised as the photo would be at `level`: a strength's
    preview at the scale the page shows the photo, in a fraction of the time.

    Area averaging lowers the noise, by up to the downscaling factor (less for the
    correlated noise of cameras), so the small copy is denoised at `level` times the
    ratio of its own estimated noise to the photo's `estimate`. It approximates the
    whole photo's result downscaled; it is not that result."""
    small, factor = overview(noisy, max_side)
    ratio = photo_level(small) / estimate if factor > 1 and estimate > 0 else 1.0
    denoised = denoise(small, runtime, level=level * ratio, ensemble=ensemble)
    return to_integer(small), to_integer(denoised)


def magnify(image, factor):
    """`image` shown `factor` times larger with nearest-neighbour pixels: a crop at 2:1
    or 4:1 shows the noise's grain, where the browser's smoothing would hide it."""
    return np.repeat(np.repeat(image, factor, axis=0), factor, axis=1)


def overview(image, max_side=1200):
    """An image (uint8, or float32 in [0, 1]) downscaled by a whole factor with area
    averaging, and the factor.
    A side shorter than the factor keeps one pixel (a 9700x8 strip shows as 1077x1)."""
    h, w = image.shape[:2]
    factor = int(np.ceil(max(h, w) / max_side))
    if factor <= 1:
        return image, 1
    size = (max(1, w // factor), max(1, h // factor))
    small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    return small.reshape(size[1], size[0], image.shape[2]), factor


def png_data_uri(image):
    """A float image as a PNG data URI, for HTML."""
    encoded = encode_image(to_float(image), "PNG")
    return "data:image/png;base64," + base64.b64encode(encoded).decode("ascii")


@dataclass
class ComparisonRow:
    """One model's result in a comparison: its scores, time and whole output."""
    model: str
    psnr: float
    ssim: float | None  # None under SSIM's window
    seconds: float
    size_mb: float | None
    denoised: np.ndarray = field(repr=False)


@dataclass
class Comparison:
    """Every model's row on one noisy image; the images are uint8, whole, so that a page
    can show any crop of them without running the models again."""

    noisy: np.ndarray
    clean: np.ndarray
    psnr_noisy: float
    rows: list

    @property
    def nbytes(self):
        return self.noisy.nbytes + self.clean.nbytes + sum(r.denoised.nbytes for r in self.rows)


def compare_models(clean, runtimes, *, kind, level, seed, sizes=None, progress=None):
    """Every runtime on the same noisy image: a row each, with its whole output."""
    noisy = make_noisy(clean, kind, level, seed)
    given = level_for_noise(noisy, kind, level)
    rows = []
    for i, (name, runtime) in enumerate(runtimes.items()):
        started = time.perf_counter()
        denoised = denoise(noisy, runtime, level=given)
        seconds = time.perf_counter() - started
        rows.append(ComparisonRow(name, metrics.psnr(clean, denoised), metrics.ssim(clean, denoised), seconds,
                                  (sizes or {}).get(name), to_integer(denoised)))
        if progress is not None:
            progress(i + 1, len(runtimes))
    return Comparison(to_integer(noisy), to_integer(clean), metrics.psnr(clean, noisy), rows)


def psnr_sweep(clean, runtimes, levels, *, seed=0, kind="gaussian", progress=None):
    """PSNR against the noise level for each runtime: rows of (model, level, psnr), where
    level is what the demo's slider sets for noise `kind` (the Gaussian sigma; for
    camera noise, the ISO in hundreds)."""
    rows = []
    total = len(runtimes) * len(levels)
    done = 0
    for level in levels:
        noisy = make_noisy(clean, kind, level, seed)
        given = level_for_noise(noisy, kind, level)
        rows.append({"model": "noisy input", "level": level, "psnr": metrics.psnr(clean, noisy)})
        for name, runtime in runtimes.items():
            rows.append({"model": name, "level": level, "psnr": metrics.psnr(clean, denoise(noisy, runtime, level=given))})
            done += 1
            if progress is not None:
                progress(done, total)
    return rows


def profile_rows(found):
    """A `profile.NoiseProfile` as two tables for plotting: (level by brightness, one
    row per intensity bin and channel, bins without enough pixels left out;
    correlation by distance, from 0 pixels, where it is 1)."""
    names = ("red", "green", "blue") if len(found.levels[0]) == 3 else ("gray",)
    levels = [{"brightness": centre, "channel": name, "std": value}
              for centre, bin_levels in zip(found.bins, found.levels)
              for name, value in zip(names, bin_levels) if not np.isnan(value)]
    correlation = [{"distance": 0, "correlation": 1.0}] + [
        {"distance": lag, "correlation": value} for lag, value in found.correlation.items()]
    return levels, correlation
