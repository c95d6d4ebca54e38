"""BM3D against the real-photo models on held-out real pairs (a benchmark, not a test).

BM3D (Dabov et al., "Image Denoising by Sparse 3-D Transform-Domain Collaborative
Filtering", IEEE TIP 2007; the `bm3d` package, CBM3D on RGB) is the classical
reference of the real-photo issue. It is not a dependency of the product: install it
beside the project's environment (`pip install bm3d`) to run this. Every image goes
through `denoiser.metrics` as the protocol says; BM3D is run at each sigma given and
its best sigma over the set is reported, as the issue's target asks. The models run
at their estimated level, as the app and the command line run them.

    python benchmarks/bm3d_real.py ../shared/data/real/polyu_train --scenes A B ... \
        --models dncnn_real dncnn_real_int8 --crop 512

Across cameras, `--camera` takes one camera's scenes, and a model may be a run's
checkpoint under a label of its own (`LABEL=PATH`), for a model trained without that
camera. BM3D takes about a minute a crop and sigma on two cores; `--bm3d-cache CSV`
keeps its scores (scene, crop, sigma, PSNR), so that it runs once:

    python benchmarks/bm3d_real.py ../shared/data/real/polyu_train --camera nikon800 \
        --models unet_no_nikon=runs/unet_real_no_nikon800/best.keras --bm3d-cache runs/bm3d_polyu.csv
"""

import argparse
import csv
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from denoiser import metrics, profile  # noqa: E402
from denoiser.catalog import load_runtime  # noqa: E402
from denoiser.engine import denoise  # noqa: E402
from denoiser.evaluate import centre_crop  # noqa: E402
from denoiser.io import load_image  # noqa: E402
from denoiser.pairs import pair_files, scenes_of_camera  # noqa: E402


def read_cache(path):
    """(scene, crop, sigma) -> BM3D PSNR, from the CSV that earlier runs wrote."""
    if path is None or not Path(path).exists():
        return {}
    with open(path, newline="") as handle:
        return {(row["scene"], int(row["crop"]), float(row["sigma"])): float(row["psnr"]) for row in csv.DictReader(handle)}


def write_cache(path, cache):
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["scene", "crop", "sigma", "psnr"])
        for (scene, crop, sigma), psnr in sorted(cache.items()):
            writer.writerow([scene, crop, f"{sigma:g}", f"{psnr:.4f}"])


def runtimes_of(specs):
    """`name` or `LABEL=PATH` -> {label: runtime}."""
    runtimes = {}
    for spec in specs:
        label, _, source = spec.rpartition("=")
        runtimes[label or source] = load_runtime(source)
    return runtimes


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pairs")
    parser.add_argument("--scenes", nargs="+", default=None)
    parser.add_argument("--camera", default=None, help="only this camera's scenes (e.g. nikon800)")
    parser.add_argument("--models", nargs="+", default=[], help="names, or LABEL=PATH of a .keras/.tflite file")
    parser.add_argument("--sigmas", nargs="+", type=float, default=[3, 5, 8, 12])
    parser.add_argument("--crop", type=int, default=512)
    parser.add_argument("--bm3d-cache", default=None, metavar="CSV", help="BM3D scores kept between runs")
    parser.add_argument("--strength", type=float, default=1.0, help="the models' level: this times the estimate")
    parser.add_argument("--ensemble", action="store_true", help="also each model's eight-orientation ensemble")
    args = parser.parse_args()

    pairs = pair_files(args.pairs)
    scenes = args.scenes or (scenes_of_camera(pairs, args.camera) if args.camera else list(pairs))
    runtimes = runtimes_of(args.models)
    ensembles = {f"{name} x8": runtime for name, runtime in runtimes.items()} if args.ensemble else {}
    cache = read_cache(args.bm3d_cache)
    scores = {"noisy": []} | {name: [] for name in [*runtimes, *ensembles]} | {f"bm3d {s:g}": [] for s in args.sigmas}
    seconds = {key: 0.0 for key in scores}
    for scene in scenes:
        noisy, clean = (centre_crop(load_image(path).pixels, args.crop) for path in pairs[scene])
        scores["noisy"].append(metrics.psnr(clean, noisy))
        level = args.strength * profile.estimate_level(noisy)
        for name, runtime in [*runtimes.items(), *ensembles.items()]:
            started = time.perf_counter()
            denoised = denoise(noisy, runtime, level=level, ensemble=name in ensembles)
            scores[name].append(metrics.psnr(clean, denoised))
            seconds[name] += time.perf_counter() - started
        for sigma in args.sigmas:
            key = (scene, args.crop, sigma)
            if key not in cache:
                import bm3d

                started = time.perf_counter()
                cache[key] = metrics.psnr(clean, bm3d.bm3d_rgb(noisy.astype(np.float64), sigma / 255.0))
                seconds[f"bm3d {sigma:g}"] += time.perf_counter() - started
                if args.bm3d_cache:
                    write_cache(args.bm3d_cache, cache)
            scores[f"bm3d {sigma:g}"].append(cache[key])
        print(f"{scene}: estimated level {level:.2f}, " + ", ".join(f"{k} {v[-1]:.2f}" for k, v in scores.items()),
              flush=True)
    best = max((k for k in scores if k.startswith("bm3d")), key=lambda k: np.mean(scores[k]))
    where = f"camera {args.camera}, " if args.camera else ""
    print(f"\n{len(scenes)} scenes ({where}central {args.crop}x{args.crop} crops, models at {args.strength:g} times "
          "the estimated level), PSNR dB "
          "(protocol of ../shared/README.md); seconds on this machine, 0 for BM3D scores from the cache\n")
    print("| method | PSNR | vs noisy | vs best BM3D | seconds |")
    print("|---|---|---|---|---|")
    for key, values in scores.items():
        mean = np.mean(values)
        mark = " (best BM3D)" if key == best else ""
        print(f"| {key}{mark} | {mean:.2f} | {mean - np.mean(scores['noisy']):+.2f} | "
              f"{mean - np.mean(scores[best]):+.2f} | {seconds[key]:.1f} |")


if __name__ == "__main__":
    main()
