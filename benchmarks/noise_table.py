"""Every noise type the demo adds, at the demo's level, on a folder of clean images (a
benchmark, not a test): the noisy input, the model the demo picks for that noise
(`catalog.model_for_noise`), the classical filters and any
other models named, each through `evaluate` (the protocol of `../shared/README.md`,
one fixed seed per image and noise). Prints one markdown table, a row per noise type.

    python benchmarks/noise_table.py ../shared/data/test/CBSD68 --models dncnn_color_int8 autoencoder_color_int8
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from denoiser.catalog import load_runtime, model_for_noise  # noqa: E402
from denoiser.classical import CLASSICAL  # noqa: E402
from denoiser.evaluate import evaluate  # noqa: E402
from denoiser.noise import NOISE_TYPES  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder")
    parser.add_argument("--models", nargs="*", default=[], help="models beside the demo's pick and the filters")
    parser.add_argument("--noises", nargs="+", default=list(NOISE_TYPES), choices=list(NOISE_TYPES))
    parser.add_argument("--limit", type=int, default=None, help="only the first N images")
    args = parser.parse_args()
    runtimes = {}
    columns = ["demo's model", *sorted(CLASSICAL), *args.models]
    print("| noise (level) | noisy | " + " | ".join(columns) + " | the demo's model | margin over the best filter |")
    print("|---|---|" + "---|" * (len(columns) + 2))
    for noise in args.noises:
        level = NOISE_TYPES[noise].demo_level
        picked = model_for_noise(noise)[0]
        scores, by_name, noisy = {}, {}, None
        for column, name in zip(columns, [picked, *sorted(CLASSICAL), *args.models]):
            if name not in by_name:  # the demo's pick is often one of the named models
                runtime = runtimes.setdefault(name, load_runtime(name))
                (row,) = evaluate(runtime, args.folder, [level], channels=3, noise=noise, limit=args.limit)
                by_name[name], noisy = row.psnr, row.psnr_noisy
            scores[column] = by_name[name]
        best_filter = max(scores[name] for name in CLASSICAL)
        cells = " | ".join(f"{scores[column]:.2f}" for column in columns)
        print(f"| {noise} ({level:g}) | {noisy:.2f} | {cells} | {picked} | {scores[columns[0]] - best_filter:+.2f} |",
              flush=True)


if __name__ == "__main__":
    main()
