"""The evaluation protocol of the benchmark sets (see the project README):
noise added unclipped with a fixed seed per image, the output clipped and
rounded to uint8, PSNR and Gaussian-window SSIM on the uint8 images, the mean
over the set, the noisy input's PSNR beside it. The demo's other noise types
(`noise.NOISE_TYPES`) are measured the same way, with the noise `noise.add_noise`
makes, seeded per image.

Real pairs (`evaluate_pairs`) add nothing: each noisy photo is denoised at its
estimated level (`profile.estimate_level`) and scored against its clean
reference; a row's level is then the mean level the model was given."""

import csv
import io
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from . import metrics
from .profile import estimate_level
from .engine import denoise, level_for_noise
from .errors import DenoiserError
from .io import list_images, load_image
from .noise import NOISE_TYPES, add_noise
from .pairs import pair_files, scenes_of_camera


# The protocol's noise levels (../shared/README.md): every table, training validation included.
EVALUATION_SIGMAS = (15, 25, 50)


@dataclass
class Row:
    """One line of an evaluation table: a model on a set at one noise level."""
    model: str
    dataset: str
    # The noise level on the 0-255 scale of `noise.add_noise` (sigma for Gaussian noise);
    # for real pairs, the mean level the model was given.
    level: float
    images: int
    psnr_noisy: float
    psnr: float
    # None where no image of the set is as large as SSIM's window on both sides.
    ssim: float | None
    noise: str = "gaussian"


def mean_ssim(values):
    """The mean of the SSIMs that exist (`metrics.ssim` is None under its window); None if none does."""
    known = [value for value in values if value is not None]
    return float(np.mean(known)) if known else None


def default_levels(noise):
    """The levels `evaluate` measures `noise` at: the protocol's sigmas for Gaussian
    noise, the demo's level for the others."""
    if noise not in NOISE_TYPES:
        raise DenoiserError(f"unknown noise type {noise!r}; choose one of {sorted(NOISE_TYPES)}")
    return EVALUATION_SIGMAS if noise == "gaussian" else (NOISE_TYPES[noise].demo_level,)


def protocol_noisy(clean, level, name, noise="gaussian"):
    """The protocol's noisy input: a seed fixed by the image's name and the level.
    Gaussian noise stays unclipped, as the protocol asks; the others are images."""
    rng = np.random.default_rng([zlib.crc32(name.encode()), int(round(level * 100))])
    if noise == "gaussian":
        return clean + rng.standard_normal(clean.shape, dtype=np.float32) * np.float32(level / 255.0)
    return add_noise(clean, noise, level, rng=rng)


def load_clean(path, channels):
    """A clean test image with `channels` channels (gray repeated into colour). Raises
    DenoiserError for a colour image in a grayscale evaluation."""
    pixels = load_image(path).pixels
    if channels == 3 and pixels.shape[2] == 1:
        return np.repeat(pixels, 3, axis=2)
    if channels == 1 and pixels.shape[2] == 3:
        raise DenoiserError(f"{path}: a colour image in a grayscale evaluation (leave out --channels 1)")
    return pixels


def evaluate(runtime, folder, levels, *, channels, noise="gaussian", limit=None, tile=None, progress=None):
    """One Row per level of `noise` for `runtime` on the images of `folder`. A model
    that takes a level is given the noise level (for Gaussian noise, sigma)."""
    files = list_images(folder)[:limit]
    rows = []
    total = len(files) * len(levels)
    for s, level in enumerate(levels):
        noisy_scores, psnrs, ssims = [], [], []
        for i, path in enumerate(files):
            clean = load_clean(path, channels)
            noisy = protocol_noisy(clean, level, path.name, noise)
            denoised = denoise(noisy, runtime, level=level_for_noise(noisy, noise, level), tile=tile)
            noisy_scores.append(metrics.psnr(clean, noisy))
            psnrs.append(metrics.psnr(clean, denoised))
            ssims.append(metrics.ssim(clean, denoised))
            if progress is not None:
                progress(s * len(files) + i + 1, total)
        rows.append(
            Row(runtime.name, Path(folder).name, level, len(files),
                float(np.mean(noisy_scores)), float(np.mean(psnrs)), mean_ssim(ssims), noise)
        )
    return rows


def centre_crop(image, size):
    """The central `size`-pixel square of `image` (all of it where it is smaller, or for
    `size` None)."""
    if size is None:
        return image
    h, w = image.shape[:2]
    top, left = max(0, (h - size) // 2), max(0, (w - size) // 2)
    return image[top : top + size, left : left + size]


def evaluate_pairs(runtimes, folder, *, scenes=None, camera=None, crop=None, strength=1.0, progress=None):
    """One Row per runtime on the real pairs of `folder` (all, the named `scenes`, or
    those of `camera`), each denoised at `strength` times its estimated level,
    optionally on central `crop`-pixel squares. Each pair is read and its level
    estimated once."""
    pairs = pair_files(folder)
    if camera:
        scenes = [scene for scene in scenes_of_camera(pairs, camera) if not scenes or scene in scenes]
    if scenes:
        missing = sorted(set(scenes) - set(pairs))
        if missing:
            raise DenoiserError(f"no pairs named {', '.join(missing)} in {folder}")
        pairs = {scene: pairs[scene] for scene in scenes}
    scores = {name: ([], []) for name in runtimes}
    noisy_scores, levels = [], []
    for i, (noisy_path, clean_path) in enumerate(pairs.values()):
        noisy, clean = (centre_crop(load_image(p).pixels, crop) for p in (noisy_path, clean_path))
        if noisy.shape != clean.shape:
            raise DenoiserError(f"{noisy_path.name} and {clean_path.name} differ in size")
        level = strength * estimate_level(noisy)
        levels.append(level)
        noisy_scores.append(metrics.psnr(clean, noisy))
        for name, runtime in runtimes.items():
            denoised = denoise(noisy, runtime, level=level)
            scores[name][0].append(metrics.psnr(clean, denoised))
            scores[name][1].append(metrics.ssim(clean, denoised))
        if progress is not None:
            progress(i + 1, len(pairs))
    label = Path(folder).name + (f" ({crop}px)" if crop else "")
    return [
        Row(name, label, float(np.mean(levels)), len(pairs), float(np.mean(noisy_scores)),
            float(np.mean(psnrs)), mean_ssim(ssims), "real")
        for name, (psnrs, ssims) in scores.items()
    ]


def manifest_differences(name, entry, runtime, *, test_root, real_root):
    """Each number that the manifest `entry` of model `name` records, measured again with
    `runtime` from the folders under `test_root` (synthetic noise: Gaussian under
    "quality", the other types under "noise_quality") and `real_root` (real pairs):
    dicts of set, noise, level, recorded, measured and difference (dB), one at a time."""
    for folder, recorded in entry.get("real_quality", {}).items():
        row = evaluate_pairs({name: runtime}, Path(real_root) / folder, scenes=recorded["scenes"],
                             crop=recorded.get("crop"))[0]
        yield {"set": f"{folder} ({row.images} real pairs)", "noise": "real", "level": "estimated",
               "recorded": recorded["psnr"], "measured": row.psnr, "difference": row.psnr - recorded["psnr"]}
    by_noise = {"gaussian": entry.get("quality", {}), **entry.get("noise_quality", {})}
    for noise, sets in by_noise.items():
        for label, scores in sets.items():
            levels = [float(level) for level in scores]
            for row in evaluate(runtime, Path(test_root) / label, levels, channels=entry["channels"], noise=noise):
                recorded = scores[f"{row.level:g}"]["psnr"]
                yield {"set": label, "noise": noise, "level": f"{row.level:g}", "recorded": recorded,
                       "measured": row.psnr, "difference": row.psnr - recorded}


def to_markdown(rows):
    """The rows as a Markdown table."""
    lines = [
        "| model | set | noise | level | images | noisy PSNR | PSNR | SSIM |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r.model} | {r.dataset} | {r.noise} | {r.level:.3g} | {r.images} | {r.psnr_noisy:.2f} | {r.psnr:.2f} "
            f"| {'—' if r.ssim is None else f'{r.ssim:.4f}'} |"
        )
    return "\n".join(lines)


def to_csv(rows):
    """The rows as CSV text, a column per field of `Row`."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(Row.__dataclass_fields__))
    writer.writeheader()
    for r in rows:
        writer.writerow(asdict(r))
    return buffer.getvalue()
