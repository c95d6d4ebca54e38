"""The measured noise of each real camera, and the level estimate's calibration.

For every scene of a pairs folder: the profile of `noisy - clean` on the central CROP
(`profile.profile`), the true level (the std of the noisy shot less its drift-free
mean, `real_training.aligned_mean`, over the whole frame) and what
`profile.estimate_level` reads on the noisy shot alone before LEVEL_FACTOR. It prints
the per-camera table of docs/noise.md, fits LEVEL_FACTOR (the median ratio of true
level to raw reading) on all cameras and, leaving each camera out, on the others,
and says how the left-out camera reads; `--figure` draws the level functions and the
correlations.

    .venv/bin/python benchmarks/noise_profiles.py ../shared/data/real/polyu_train --figure docs/noise_profiles.png
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from denoiser import profile  # noqa: E402
from denoiser.io import to_float  # noqa: E402
from denoiser.pairs import camera_of, pair_files  # noqa: E402
from denoiser.training.data import read_training_image  # noqa: E402
from denoiser.training.real_training import aligned_mean  # noqa: E402

CROP = 512


def measure(folder):
    rows = []
    for scene, (noisy_path, clean_path) in sorted(pair_files(folder).items()):
        noisy, clean = read_training_image(noisy_path, 3), read_training_image(clean_path, 3)
        y, x = (noisy.shape[0] - CROP) // 2, (noisy.shape[1] - CROP) // 2
        p = profile.profile(to_float(noisy[y : y + CROP, x : x + CROP]), to_float(clean[y : y + CROP, x : x + CROP]))
        true = float(np.std(noisy.astype(np.float32) - aligned_mean(noisy, clean).astype(np.float32)))
        raw = profile.estimate_level(to_float(noisy)) / profile.LEVEL_FACTOR
        clean_raw = profile.estimate_level(to_float(clean)) / profile.LEVEL_FACTOR
        rows.append({"scene": scene, "camera": camera_of(scene), "profile": p.as_dict(), "true": true,
                     "raw": raw, "clean_raw": clean_raw})
        print(f"{scene}: std {p.std:.2f}, true {true:.2f}, raw estimate {raw:.2f}", file=sys.stderr, flush=True)
    return rows


def camera_table(rows):
    print("| camera | scenes | std | corr 1 px | 2 px | 4 px | 8 px | luma/chroma |")
    print("|---|---|---|---|---|---|---|---|")
    for name in sorted({r["camera"] for r in rows}):
        ps = [r["profile"] for r in rows if r["camera"] == name]

        def span(values):
            return f"{np.median(values):.2f} ({min(values):.2f}–{max(values):.2f})"

        print(f"| {name} | {len(ps)} | {span([p['std'] for p in ps])} | "
              + " | ".join(span([p["correlation"][k] for p in ps]) for k in ("1", "2", "4", "8"))
              + f" | {span([p['luma_chroma'] for p in ps])} |")


def factor(rows):
    return float(np.median([r["true"] / r["raw"] for r in rows if r["raw"] > 0]))


def calibration(rows):
    print(f"\nLEVEL_FACTOR on all cameras: {factor(rows):.2f} (in the code: {profile.LEVEL_FACTOR})\n")
    print("| left out | factor from the others | its reading ÷ true level, median (range) | its clean means read |")
    print("|---|---|---|---|")
    for name in sorted({r["camera"] for r in rows}):
        f = factor([r for r in rows if r["camera"] != name])
        ratios = [f * r["raw"] / r["true"] for r in rows if r["camera"] == name]
        clean = [f * r["clean_raw"] for r in rows if r["camera"] == name]
        print(f"| {name} | {f:.2f} | {np.median(ratios):.2f} ({min(ratios):.2f}–{max(ratios):.2f}) | "
              f"median {np.median(clean):.2f}, max {max(clean):.2f} |")


def figure(rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for name in sorted({r["camera"] for r in rows}):
        ps = [r["profile"] for r in rows if r["camera"] == name]
        levels = np.nanmedian([np.array(p["levels"], float).mean(axis=1) for p in ps], axis=0)
        left.plot(ps[0]["bins"], levels, marker="o", label=name)
        right.plot([0, 1, 2, 4, 8], [1] + [np.median([p["correlation"][k] for p in ps]) for k in ("1", "2", "4", "8")],
                   marker="o", label=name)
    left.set(xlabel="brightness of the clean image (0-255)", ylabel="noise std (0-255), median of scenes",
             title="Noise level function")
    right.set(xlabel="distance (pixels)", ylabel="correlation", title="Correlation of horizontal neighbours")
    left.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pairs")
    parser.add_argument("--figure")
    parser.add_argument("--json", help="where to keep the per-scene figures")
    args = parser.parse_args()
    rows = measure(args.pairs)
    camera_table(rows)
    calibration(rows)
    if args.figure:
        figure(rows, args.figure)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
