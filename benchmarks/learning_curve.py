"""The learning curve of real-photo runs across cameras, as a PNG for the README.

Each run folder holds `log.csv` (one row an epoch: its validation PSNR on the held-out
scenes, and the noisy input's) and `state.json` (its config: the held-out camera,
steps per epoch and batch size, from which the patches seen follow). Runs that hold
out different cameras are drawn side by side, with their mean where both have
reached an epoch: the cross-camera number that recipes are chosen on.

    python benchmarks/learning_curve.py runs/unet_real_no_nikon800 runs/unet_real_no_canon5d2 \
        -o runs/unet_real_learning_curve.png
"""

import argparse
import csv
import json
from pathlib import Path


def read_run(folder):
    """(label, patches seen per epoch, validation PSNR, noisy PSNR) of a run folder."""
    folder = Path(folder)
    config = json.loads((folder / "state.json").read_text())["config"]
    with open(folder / "log.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    per_epoch = config["steps_per_epoch"] * config["batch_size"]
    held = config.get("hold_out_camera") or "every 4th scene"
    return (f"{folder.name} (validated on {held})", [int(r["epoch"]) * per_epoch for r in rows],
            [float(r["val_psnr"]) for r in rows], [float(r["val_psnr_noisy"]) for r in rows])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+")
    parser.add_argument("-o", "--output", required=True)
    args = parser.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = [read_run(folder) for folder in args.runs]
    figure, axis = plt.subplots(figsize=(8, 4.5), dpi=110)
    for label, patches, psnr, noisy in runs:
        line, = axis.plot(patches, psnr, marker=".", label=label)
        axis.axhline(noisy[0], color=line.get_color(), linestyle=":", linewidth=1)
    if len(runs) > 1:
        length = min(len(run[1]) for run in runs)
        mean = [sum(run[2][i] for run in runs) / len(runs) for i in range(length)]
        gain = [mean[i] - sum(run[3][0] for run in runs) / len(runs) for i in range(length)]
        axis.plot(runs[0][1][:length], mean, color="black", linewidth=2,
                  label=f"mean of the {len(runs)} directions (last: {mean[-1]:.2f} dB, {gain[-1]:+.2f} over noisy)")
    axis.set_xlabel("training patches seen")
    axis.set_ylabel("PSNR on the held-out camera (dB)")
    axis.set_title("Real-photo training across cameras (dotted: the noisy input)")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8, loc="lower right")
    figure.tight_layout()
    figure.savefig(args.output)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
