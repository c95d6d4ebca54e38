"""Fits `camera.CameraSettings` to each real camera's noise and writes
denoiser/cameras.json, the fitted cameras that training and the demo draw from.

For each camera of a pairs folder, the central CROP of five of its scenes' clean means
goes through the simulated camera, at the JPEG quality the camera's own files say; the
other settings are chosen so that the synthetic noise's median figures over the scenes
(std, correlation at 1, 2 and 4 pixels, luma/chroma: `profile.profile`) match the real
pairs' medians, by a random search over a broad range and then one setting at a time.
tests/test_profile.py checks the fit, and that blends of the other cameras
(`camera.fitted_blend`) cover each camera left out.

    .venv/bin/python benchmarks/fit_camera_noise.py ../shared/data/real/polyu_train --evaluations 100 \
        --workers 1 --scenes 5
"""

import argparse
import json
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from denoiser import camera, profile  # noqa: E402
from denoiser.io import load_image, to_float  # noqa: E402
from denoiser.pairs import camera_of, pair_files  # noqa: E402
from denoiser.training.data import read_training_image  # noqa: E402

CROP = 384
FIGURES = ("std", "corr1", "corr2", "corr4", "luma_chroma")
BROAD = camera.CameraRange(iso=(200, 12800), read_scale=(0.2, 4), luma_nr=(0, 1), luma_blur=(0.3, 5),
                           chroma_nr=(0, 1), chroma_blur=(0.3, 5), sharpen=(0, 1.5), jpeg_quality=(70, 100))


def figures(p):
    return [p.std, p.correlation[1], p.correlation[2], p.correlation[4], p.luma_chroma]


def camera_crops(folder, name, scenes=None):
    """The central CROP of each of the camera's (noisy, clean) pairs (of at most
    `scenes` of them, spread evenly over their sorted names), and the JPEG quality its
    noisy files' tables say (the median)."""
    crops, qualities = [], []
    names = sorted(scene for scene in pair_files(folder) if camera_of(scene) == name)
    if scenes and len(names) > scenes:
        names = [names[i] for i in np.linspace(0, len(names) - 1, scenes).round().astype(int)]
    pairs = pair_files(folder)
    for scene in names:
        noisy_path, clean_path = pairs[scene]
        qualities.append(load_image(noisy_path).jpeg_quality)
        noisy, clean = read_training_image(noisy_path, 3), read_training_image(clean_path, 3)
        y, x = (noisy.shape[0] - CROP) // 2, (noisy.shape[1] - CROP) // 2
        crops.append((to_float(noisy[y : y + CROP, x : x + CROP]), to_float(clean[y : y + CROP, x : x + CROP])))
    return crops, int(np.median(qualities))


def median_figures(pairs):
    return np.median([figures(profile.profile(noisy, clean)) for noisy, clean in pairs], axis=0)


def synthetic_figures(settings, crops, seed=0):
    rng = np.random.default_rng(seed)
    return median_figures([(camera.shoot(clean, settings, rng=rng), clean) for _, clean in crops])


def loss(synthetic, real):
    ratio = np.log(np.maximum(synthetic, 1e-3) / real)
    return float((ratio * ratio).sum())


def nudge(settings, rng):
    """`settings` with one of its numbers moved a little."""
    d = asdict(settings)
    key = rng.choice(["iso", "read_scale", "luma_nr", "luma_blur", "chroma_nr", "chroma_blur", "sharpen", "demosaic"])
    if key == "iso":
        d[key] = float(np.clip(d[key] * np.exp(rng.normal(0, 0.2)), 50, camera.MAX_ISO))
    elif key == "demosaic":
        d[key] = "edge_aware" if d[key] == "bilinear" else "bilinear"
    else:
        d[key] = float(np.clip(d[key] + rng.normal(0, 0.15), 0, 1 if key.endswith("_nr") else 100))
    return camera.CameraSettings(**d)


def fit(args):
    folder, name, evaluations, scenes = args
    crops, quality = camera_crops(folder, name, scenes)
    real = median_figures(crops)
    rng = np.random.default_rng(1)
    best = None
    for i in range(2 * evaluations):
        settings = BROAD.sample(rng) if i < evaluations or best is None else nudge(best[1], rng)
        # The camera's own JPEG quality, as its files' tables say: the correlation must
        # come from the camera's processing, not from a harder JPEG than it uses.
        settings = replace(settings, jpeg_quality=quality)
        synthetic = synthetic_figures(settings, crops)
        if best is None or loss(synthetic, real) < best[0]:
            best = (loss(synthetic, real), settings, synthetic)
    _, settings, synthetic = best
    return name, {"settings": asdict(settings), "scenes": len(crops), "file_jpeg_quality": quality,
                  "real": dict(zip(FIGURES, real.tolist())), "synthetic": dict(zip(FIGURES, synthetic.tolist()))}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pairs")
    parser.add_argument("--evaluations", type=int, default=250)
    parser.add_argument("--output", default=str(camera.FITTED))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--scenes", type=int, default=5, help="the scenes of each camera to fit on, at most")
    args = parser.parse_args()
    names = sorted({camera_of(scene) for scene in pair_files(args.pairs)})
    with ProcessPoolExecutor(args.workers) as pool:
        fitted = dict(pool.map(fit, [(args.pairs, name, args.evaluations, args.scenes) for name in names]))
    for name, entry in fitted.items():
        ratios = {k: entry["synthetic"][k] / entry["real"][k] for k in FIGURES}
        print(name, " ".join(f"{k} {entry['real'][k]:.2f}->{entry['synthetic'][k]:.2f} ({r:.2f})"
                             for k, r in ratios.items()))
    Path(args.output).write_text(json.dumps({
        "source": f"benchmarks/fit_camera_noise.py {args.pairs} --evaluations {args.evaluations} "
                  f"--scenes {args.scenes}",
        "crop": CROP, "scenes": args.scenes, "cameras": fitted}, indent=1) + "\n")


if __name__ == "__main__":
    main()
