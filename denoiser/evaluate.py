"""The evaluation protocol of the benchmark sets (see the project README):
noise added unclipped with a fixed seed per image, the output clipped and
rounded to uint8, PSNR and Gaussian-window SSIM on the uint8 images, the mean
over the set, the noisy input's PSNR beside it."""

import csv
import io
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from . import metrics
from .data import list_images
from .engine import denoise
from .io import load_image


@dataclass
class Row:
    model: str
    dataset: str
    sigma: float
    images: int
    psnr_noisy: float
    psnr: float
    ssim: float


def protocol_noisy(clean, sigma, name):
    """The protocol's noisy input: a seed fixed by the image's name and sigma."""
    rng = np.random.default_rng([zlib.crc32(name.encode()), int(round(sigma * 100))])
    return clean + rng.standard_normal(clean.shape, dtype=np.float32) * np.float32(sigma / 255.0)


def load_clean(path, channels):
    pixels = load_image(path).pixels
    if channels == 3 and pixels.shape[2] == 1:
        return np.repeat(pixels, 3, axis=2)
    if channels == 1 and pixels.shape[2] == 3:
        raise ValueError(f"{path}: a colour image in a grayscale evaluation")
    return pixels


def evaluate(runtime, folder, sigmas, *, channels, limit=None, tile=None, progress=None):
    """One Row per sigma for `runtime` on the images of `folder`."""
    files = list_images(folder)[:limit]
    rows = []
    total = len(files) * len(sigmas)
    for s, sigma in enumerate(sigmas):
        noisy_scores, psnrs, ssims = [], [], []
        for i, path in enumerate(files):
            clean = load_clean(path, channels)
            noisy = protocol_noisy(clean, sigma, path.name)
            denoised = denoise(noisy, runtime, sigma=sigma, tile=tile)
            noisy_scores.append(metrics.psnr(clean, noisy))
            psnrs.append(metrics.psnr(clean, denoised))
            ssims.append(metrics.ssim(clean, denoised))
            if progress is not None:
                progress(s * len(files) + i + 1, total)
        rows.append(
            Row(runtime.name, Path(folder).name, sigma, len(files),
                float(np.mean(noisy_scores)), float(np.mean(psnrs)), float(np.mean(ssims)))
        )
    return rows


def to_markdown(rows):
    lines = [
        "| model | set | sigma | images | noisy PSNR | PSNR | SSIM |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r.model} | {r.dataset} | {r.sigma:g} | {r.images} | {r.psnr_noisy:.2f} | {r.psnr:.2f} | {r.ssim:.4f} |"
        )
    return "\n".join(lines)


def to_csv(rows):
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(Row.__dataclass_fields__))
    writer.writeheader()
    for r in rows:
        writer.writerow(asdict(r))
    return buffer.getvalue()
