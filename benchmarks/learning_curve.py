"""The learning curve of real-photo runs across cameras, as a PNG for docs/real-photos.md.

Each run folder holds `log.csv` (one row an epoch: its validation PSNR on the held-out
scenes, and the noisy input's) and `state.json` (its config: the held-out camera,
steps per epoch and batch size, from which the patches seen follow). A run started
from another run's checkpoint (`--init-from runs/X/last.keras`) continues that run's
curve: its patches are counted from where the other run stopped. Runs whose folder
names differ only in the held-out camera (`..._no_nikon800`, `..._no_canon5d2`) are
one recipe's two directions, drawn in one colour, with their mean where both have
reached an epoch: the cross-camera number that recipes are chosen on.

    python benchmarks/learning_curve.py runs/unet_real_no_nikon800 runs/unet_real_no_canon5d2 \
        runs/recipe_level_estimate_no_nikon800 runs/recipe_level_estimate_no_canon5d2 \
        -o runs/unet_real_learning_curve.png
"""

import argparse
import csv
import json
import re
from collections import defaultdict
from pathlib import Path

TAIL = 6  # epochs averaged in the legend: one epoch's validation swings by up to 0.5 dB


def patches_before(config):
    """The patches seen by the run whose checkpoint this run started from, if any."""
    parent = Path(config.get("init_from") or "").parent / "state.json"
    if not config.get("init_from") or not parent.exists():
        return 0
    return json.loads(parent.read_text()).get("patches_seen", 0)


def read_run(folder):
    """(recipe, camera held out, patches seen per row, validation PSNR, noisy PSNR) of a run folder."""
    folder = Path(folder)
    config = json.loads((folder / "state.json").read_text())["config"]
    with open(folder / "log.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    per_epoch, start = config["steps_per_epoch"] * config["batch_size"], patches_before(config)
    held = config.get("hold_out_camera") or "every 4th scene"
    # Runs from before `level_input` existed were validated at the measured level; round 4's
    # since, at the estimate; round 5's (fitted synthetic noise) at the true level again.
    if config.get("synthetic") == "fitted":
        validated = "the true level"
    else:
        validated = "the estimate" if "level_input" in config else "the measured level"
    return (f"{re.sub(r'_no_[a-z0-9]+$', '', folder.name)}, validated at {validated}", held, [start + int(r["epoch"]) * per_epoch for r in rows],
            [float(r["val_psnr"]) for r in rows], [float(r["val_psnr_noisy"]) for r in rows])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+")
    parser.add_argument("-o", "--output", required=True)
    args = parser.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    recipes = defaultdict(list)
    for folder in args.runs:
        run = read_run(folder)
        recipes[run[0]].append(run)
    figure, axis = plt.subplots(figsize=(9, 5), dpi=110)
    # One line style a held-out camera: the first in sorted order solid, the next dashed.
    cameras = sorted({run[1] for runs in recipes.values() for run in runs})
    styles = {held: ("-", "--", "-.", ":")[i % 4] for i, held in enumerate(cameras)}
    for index, (recipe, runs) in enumerate(recipes.items()):
        colour = f"C{index}"
        for _, held, patches, psnr, _ in runs:
            axis.plot(patches, psnr, color=colour, linewidth=0.8, alpha=0.5, marker=".", markersize=3,
                      linestyle=styles[held])
        if len(runs) > 1:
            length = min(len(run[2]) for run in runs)
            mean = [sum(run[3][i] for run in runs) / len(runs) for i in range(length)]
            tail = mean[-TAIL:]
            axis.plot(runs[0][2][:length], mean, color=colour, linewidth=2.2,
                      label=f"{recipe}: mean of the {len(runs)} directions "
                            f"({sum(tail) / len(tail):.2f} dB over its last {len(tail)} epochs)")
    noisy = {held: psnr for runs in recipes.values() for _, held, _, _, psnr in runs}
    for held, psnr in noisy.items():
        axis.axhline(psnr[0], color="gray", linestyle=":", linewidth=1)
    axis.set_xlabel("training patches seen")
    axis.set_ylabel("PSNR on the held-out camera (dB)")
    held_out = ", ".join(f"{held} {'solid' if style == '-' else 'dashed' if style == '--' else style}"
                         for held, style in styles.items())
    axis.set_title(f"Real-photo training across cameras (thin, held out: {held_out}; dotted: the noisy inputs)",
                   fontsize=9)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8, loc="lower right")
    figure.tight_layout()
    figure.savefig(args.output)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
