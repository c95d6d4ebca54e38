"""How small a tile margin a model can take: PSNR and the largest change against
whole-image inference, for each margin, on central crops of real pairs (a benchmark,
not a test). A margin equal to the receptive radius is exact for a model with no
pooling and no strides; below it, and for strided or pooling models, what a margin
costs is measured here, not assumed.

    python benchmarks/tile_margin.py runs/unet_real_no_nikon800/best.keras \
        ../shared/data/real/polyu_train --camera nikon800 --scenes 2 --tile 1024 --margins 16 32 48 64
"""

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from denoiser import metrics, profile  # noqa: E402
from denoiser.catalog import load_keras_model  # noqa: E402
from denoiser.engine import denoise, denoise_whole  # noqa: E402
from denoiser.evaluate import centre_crop  # noqa: E402
from denoiser.io import load_image  # noqa: E402
from denoiser.pairs import pair_files, scenes_of_camera  # noqa: E402
from denoiser.runtimes import KerasRuntime  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="a .keras file")
    parser.add_argument("pairs")
    parser.add_argument("--camera", default=None)
    parser.add_argument("--scenes", type=int, default=2, help="how many scenes, the first by name")
    parser.add_argument("--crop", type=int, default=1536)
    parser.add_argument("--tile", type=int, default=1024)
    parser.add_argument("--margins", nargs="+", type=int, default=[16, 32, 48, 64])
    args = parser.parse_args()

    model = load_keras_model(args.model)
    pairs = pair_files(args.pairs)
    scenes = (scenes_of_camera(pairs, args.camera) if args.camera else list(pairs))[: args.scenes]
    whole_runtime = KerasRuntime(model)
    print(f"{Path(args.model)}: receptive radius {whole_runtime.margin}; tiles of up to {args.tile}; "
          f"central {args.crop}-pixel crops of {', '.join(scenes)}\n")
    print("| margin | " + " | ".join(f"{scene} PSNR | max change" for scene in scenes) + " |")
    print("|---|" + "---|---|" * len(scenes))
    crops = [[centre_crop(load_image(path).pixels, args.crop) for path in pairs[scene]] for scene in scenes]
    levels = [profile.estimate_level(noisy) for noisy, _ in crops]
    wholes = [denoise_whole(noisy, whole_runtime, level=level) for (noisy, _), level in zip(crops, levels)]
    cells = [f"{metrics.psnr(clean, whole):.3f} | 0" for (_, clean), whole in zip(crops, wholes)]
    print("| whole image | " + " | ".join(cells) + " |")
    for margin in args.margins:
        runtime = KerasRuntime(model, margin=margin, tile=args.tile)
        cells = []
        for (noisy, clean), level, whole in zip(crops, levels, wholes):
            tiled = denoise(noisy, runtime, level=level)
            cells.append(f"{metrics.psnr(clean, tiled):.3f} | {np.abs(tiled - whole).max() * 255:.2f}")
        print(f"| {margin} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
