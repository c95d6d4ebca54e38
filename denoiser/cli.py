"""Command line: `python -m denoiser {denoise,add-noise,evaluate,bench,train,export,models}`."""

import argparse
import glob
import os
import sys
from pathlib import Path

import numpy as np

from .errors import DenoiserError


class _Bar:
    """A tqdm progress bar fed by a (done, total) callback: the engine's, in tiles,
    or the evaluation's, in images."""

    def __init__(self, desc, enabled=True, unit="tile"):
        from tqdm import tqdm

        self._tqdm = tqdm
        self.desc, self.enabled, self.unit, self.bar = desc, enabled, unit, None

    def __call__(self, done, total):
        if not self.enabled:
            return
        if self.bar is None:
            # Created at the first callback, after the first batch: counting that
            # batch as done at time zero would show an absurd first rate.
            self.bar = self._tqdm(total=total, initial=done, desc=self.desc, unit=self.unit, leave=False)
            return
        self.bar.n = done
        self.bar.refresh()

    def close(self):
        if self.bar is not None:
            self.bar.close()


def expand_inputs(inputs, skip_suffix=None):
    """The files that `inputs` (files, folders, globs) name. From a folder or a glob,
    files whose name ends in `skip_suffix` are this command's earlier outputs: they
    are skipped, with a word; a file named on its own is always taken."""
    from .data import IMAGE_SUFFIXES

    files = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        elif path.exists():
            files.append(path)
            continue
        else:
            found = sorted(Path(p) for p in glob.glob(item))
            if not found:
                raise DenoiserError(f"{item}: no such file, folder or matching files")
        for match in found:
            if skip_suffix and match.stem.endswith(skip_suffix):
                print(f"skipping {match}: an earlier output (name it on its own to process it)")
            else:
                files.append(match)
    if not files:
        raise DenoiserError("no input images found")
    return files


def plan_outputs(files, output, *, suffix, fmt=None, overwrite=False):
    """Each input's output path, checked before any work: a known format, never an
    input, no two inputs to one file, no existing file unless `overwrite`, and a
    folder that takes files."""
    from .io import WRITE_FORMATS, format_for_path

    extension = WRITE_FORMATS[fmt] if fmt else ".png"
    folder = None
    if output is None:
        targets = [source.with_name(f"{source.stem}{suffix}{extension}") for source in files]
    else:
        output = Path(output)
        if len(files) > 1 and output.exists() and not output.is_dir():
            raise DenoiserError(f"--output {output} is a file, but there are {len(files)} inputs: name a folder")
        if len(files) > 1 or output.is_dir() or (not output.exists() and not output.suffix):
            folder = output
            targets = [output / f"{source.stem}{suffix}{extension}" for source in files]
        else:
            targets = [output]
    # Same-stem inputs (photo.jpg, photo.png) keep their suffix in the name.
    shared = {target for target in targets if targets.count(target) > 1}
    targets = [
        target.with_name(f"{source.stem}_{source.suffix.lstrip('.').lower()}{suffix}{extension}")
        if target in shared else target
        for source, target in zip(files, targets)
    ]
    inputs = {source.resolve() for source in files}
    seen = set()
    for target in targets:
        resolved = target.resolve()
        if resolved in seen:
            raise DenoiserError(f"two inputs would both be written to {target}")
        seen.add(resolved)
        if resolved in inputs:
            raise DenoiserError(f"{target} is an input: refusing to write over it; choose another --output")
        if target.exists() and not target.is_file():
            raise DenoiserError(f"{target} exists and is not a regular file")
        if target.exists() and not overwrite:
            raise DenoiserError(f"{target} already exists; add --overwrite to replace it")
        if fmt is None:
            format_for_path(target)
    for parent in {target.parent for target in targets} | ({folder} if folder else set()):
        _check_writable(parent)
    return targets


def _check_writable(folder):
    import tempfile

    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise DenoiserError(f"cannot write in {folder}: {exc.strerror or exc}") from None


def cmd_denoise(args):
    from .catalog import available_models, load_runtime, model_for_channels
    from .engine import check_image, check_tiling, default_level, denoise
    from .io import load_image, save_picture

    if args.sigma is not None and not 0 <= args.sigma <= 255:
        raise DenoiserError(f"--sigma must be between 0 and 255, got {args.sigma}")
    files = expand_inputs(args.inputs, skip_suffix=DENOISED_SUFFIX)
    targets = plan_outputs(files, args.output, suffix=DENOISED_SUFFIX, fmt=args.format, overwrite=args.overwrite)
    chosen = args.model or available_models(real_photo=True)[0]
    runtimes = {chosen: load_runtime(chosen)}
    if args.tile is not None:
        check_tiling(runtimes[chosen], args.tile)
    for source, target in zip(files, targets):
        picture = load_image(source)
        check_image(picture.pixels)
        name = model_for_channels(chosen, picture.channels)
        if name not in runtimes:
            runtimes[name] = load_runtime(name)
            if name != chosen:
                print(f"gray images go to {name}: {chosen} is a colour model")
        runtime = runtimes[name]
        sigma = args.sigma if args.sigma is not None else default_level(picture.pixels, runtime)
        bar = _Bar(source.name, enabled=not args.quiet)
        try:
            denoised = denoise(picture.pixels, runtime, sigma=sigma, tile=args.tile, batch=args.batch, progress=bar)
        finally:
            bar.close()
        save_picture(picture, denoised, target, fmt=args.format, quality=args.quality)
        estimated = args.sigma is None and sigma is not None
        print(f"{source} -> {target}" + (f" (estimated noise level {sigma:.1f})" if estimated else "")
              + _dropped_alpha(picture, target, args.format))
    return 0


DENOISED_SUFFIX = "_denoised"


def _dropped_alpha(picture, target, fmt):
    from .io import format_for_path

    if picture.alpha is not None and (fmt or format_for_path(target)) == "JPEG":
        return " (JPEG holds no transparency: the alpha channel was dropped)"
    return ""


def cmd_add_noise(args):
    from .io import load_image, save_picture
    from .noise import add_noise, check_level

    check_level(args.level)
    suffix = f"_{args.type}{args.level:g}"
    files = expand_inputs(args.inputs, skip_suffix=suffix)
    targets = plan_outputs(files, args.output, suffix=suffix, fmt=args.format, overwrite=args.overwrite)
    rng = np.random.default_rng(args.seed)
    for source, target in zip(files, targets):
        picture = load_image(source)
        noisy = add_noise(picture.pixels, args.type, args.level, rng=rng)
        save_picture(picture, noisy, target, fmt=args.format, quality=args.quality)
        print(f"{source} -> {target}" + _dropped_alpha(picture, target, args.format))
    return 0


def cmd_evaluate(args):
    from .evaluate import to_csv, to_markdown

    if args.check_manifest:
        return check_manifest(args)
    if args.pairs:
        rows = evaluate_real_pairs(args)
    elif not args.folders:
        raise DenoiserError("name at least one folder of clean images, or use --pairs or --check-manifest")
    else:
        rows = evaluate_gaussian(args)
    markdown = to_markdown(rows)
    print(markdown)
    if args.markdown:
        Path(args.markdown).write_text(markdown + "\n")
    if args.csv:
        Path(args.csv).write_text(to_csv(rows))
    return 0


def evaluate_real_pairs(args):
    from .catalog import available_models, load_runtime
    from .evaluate import evaluate_pairs

    if args.crop is not None and args.crop < 16:
        raise DenoiserError(f"--crop must be at least 16 pixels, got {args.crop}")
    runtimes = {spec: load_runtime(spec) for spec in args.models or available_models(real_photo=True)[:1]}
    bar = _Bar(f"pairs in {Path(args.pairs).name}", enabled=not args.quiet, unit="pair")
    try:
        return evaluate_pairs(runtimes, args.pairs, scenes=args.scenes, crop=args.crop, progress=bar)
    finally:
        bar.close()


def evaluate_gaussian(args):
    from .catalog import available_models, load_runtime, read_manifest
    from .evaluate import evaluate

    manifest = read_manifest()
    rows = []
    for spec in args.models or available_models()[:1]:
        runtime = load_runtime(spec)
        channels = args.channels or (manifest.get(spec, {}).get("channels") or runtime.channels or 3)
        for folder in args.folders:
            bar = _Bar(f"{spec} on {Path(folder).name}", enabled=not args.quiet, unit="image")
            try:
                rows += evaluate(runtime, folder, args.sigmas, channels=channels, limit=args.limit, progress=bar)
            finally:
                bar.close()
    return rows


def check_manifest(args, tolerance=0.01):
    """Re-measures every manifest number from the test folders; exit 1 on any difference."""
    from .catalog import load_runtime, read_manifest
    from .evaluate import evaluate, evaluate_pairs

    manifest = read_manifest()
    names = [name for name in manifest if name in args.models] if args.models else list(manifest)
    if not names:
        raise DenoiserError("no models in models/manifest.json to check")
    worst = 0.0
    print("| model | set | sigma | manifest PSNR | measured PSNR | difference |")
    print("|---|---|---|---|---|---|")
    for name in names:
        entry, runtime = manifest[name], load_runtime(name)
        for folder, recorded in entry.get("real_quality", {}).items():
            row = evaluate_pairs({name: runtime}, Path(args.real_root) / folder, scenes=recorded["scenes"],
                                 crop=recorded.get("crop"))[0]
            worst = max(worst, abs(row.psnr - recorded["psnr"]))
            print(f"| {name} | {folder} ({row.images} real pairs) | estimated | {recorded['psnr']:.3f} | "
                  f"{row.psnr:.3f} | {row.psnr - recorded['psnr']:+.3f} |")
        for label, scores in entry.get("quality", {}).items():
            folder = Path(args.test_root) / label
            sigmas = [float(s) for s in scores]
            for row in evaluate(runtime, folder, sigmas, channels=entry["channels"]):
                recorded = scores[f"{row.sigma:g}"]["psnr"]
                worst = max(worst, abs(row.psnr - recorded))
                print(f"| {name} | {label} | {row.sigma:g} | {recorded:.3f} | {row.psnr:.3f} | {row.psnr - recorded:+.3f} |")
    print(f"largest difference {worst:.3f} dB (tolerance {tolerance} dB)")
    return 0 if worst <= tolerance else 1


def cmd_bench(args):
    from .bench import bench
    from .catalog import available_models

    specs = args.models or [m for m in available_models() if m not in ("median", "bilateral")]
    print(f"bench: {os.cpu_count()} CPU cores, {args.size}x{args.size} image for throughput, "
          f"{args.megapixels:g} MP image for memory")
    results = bench(specs, size=args.size, megapixels=args.megapixels, repeats=args.repeats)
    return 0 if results else 1


def cmd_train(args):
    from .train import TrainConfig, train

    config = TrainConfig(
        arch=args.arch, channels=args.channels, train_dir=args.train_dir, run_dir=args.run_dir,
        patch_size=args.patch_size, stride=args.stride, scales=tuple(args.scales),
        sigma_range=(args.sigma_min, args.sigma_max), batch_size=args.batch_size,
        steps_per_epoch=args.steps_per_epoch, epochs=args.epochs, lr=args.lr,
        lr_halve_every=args.lr_halve_every, seed=args.seed, max_minutes=args.max_minutes,
        val_fraction=args.val_fraction, init_from=args.init_from or "",
        quantization_aware=args.quantization_aware,
    )
    state = train(config, resume=args.resume, verbose=2 if args.quiet else 1)
    print(f"epoch {state['epoch']}, best validation PSNR at sigma 25: {state.get('best_val_psnr_25', float('nan')):.2f} dB")
    return 0


def cmd_train_real(args):
    from .config import RealConfig
    from .real_training import train_real

    config = RealConfig(
        arch=args.arch, init_from=args.init_from, train_dir=args.train_dir, pairs_dir=args.pairs_dir,
        run_dir=args.run_dir, patch_size=args.patch_size, batch_size=args.batch_size, real_share=args.real_share,
        clean_share=args.clean_share,
        steps_per_epoch=args.steps_per_epoch, epochs=args.epochs, lr=args.lr, lr_halve_every=args.lr_halve_every,
        seed=args.seed, max_minutes=args.max_minutes, mixed_precision=args.mixed_precision,
    )
    state = train_real(config, resume=args.resume, workers=args.workers, log=lambda line: print(line, flush=True))
    print(f"epoch {state['epoch']}, best validation PSNR on held-out real scenes: "
          f"{state.get('best_val_psnr', float('nan')):.2f} dB")
    return 0


def cmd_export(args):
    from .catalog import load_keras_model
    from .export import calibration_set, export_file

    model = load_keras_model(args.model)
    representative = None
    if args.variant == "int8_full":
        if not args.calibration_dir:
            raise DenoiserError("int8_full needs --calibration-dir, a folder of clean training images")
        representative = calibration_set(args.calibration_dir, channels=model.input_shape[-1], tile=args.tile,
                                         count=args.calibration_count, rng=np.random.default_rng(args.seed))
    path, output = export_file(model, args.output, args.variant, tile=args.tile, batch=args.batch,
                               representative=representative)
    print(f"{path}: {args.variant}, tiles {args.batch}x{args.tile}x{args.tile}, outputs the {output}")
    return 0


def cmd_publish(args):
    import json

    from .publish import publish

    def run(folder):
        state = Path(folder) / "state.json"
        if not state.exists():
            raise DenoiserError(f"{folder} is not a training run: it has no state.json")
        return Path(folder) / args.checkpoint, json.loads(state.read_text())

    checkpoint, state = run(args.run_dir)
    if args.pairs:
        from .publish import publish_real

        publish_real(checkpoint, args.name, title=args.title, run_state=state, pairs_dir=args.pairs,
                     crop=args.crop, tile=args.tile, batch=args.batch)
        return 0
    if not args.eval:
        raise DenoiserError("name the evaluation sets with --eval, or the real pairs of a real-photo run with --pairs")
    sets = dict(item.split("=", 1) for item in args.eval)
    publish(checkpoint, args.name, title=args.title, run_state=state,
            train_dir=args.calibration_dir or state["config"]["train_dir"], eval_sets=sets,
            sigmas=args.sigmas, limit=args.limit, tile=args.tile, batch=args.batch,
            int8_from=run(args.int8_from) if args.int8_from else None)
    return 0


def cmd_models(args):
    from .catalog import available_models, model_title, read_manifest

    manifest = read_manifest()
    for i, name in enumerate(available_models()):
        facts = [model_title(name, manifest)]
        entry = manifest.get(name, {})
        for dataset, scores in entry.get("quality", {}).items():
            facts.append(f"{dataset} " + " / ".join(f"{scores[s]['psnr']:.2f}" for s in scores) + " dB at sigma "
                         + " / ".join(scores))
        for folder, scores in entry.get("real_quality", {}).items():
            facts.append(f"{scores['images']} held-out real photos of {folder}: {scores['psnr']:.2f} dB "
                         f"(noisy {scores['psnr_noisy']:.2f})")
        if "cpu_mp_s" in entry:
            facts.append(f"{entry['cpu_mp_s']:.2f} MP/s on CPU")
        if i == 0 and entry:
            facts.append("the app's default")
        print(f"{name:<20} " + "; ".join(facts))
    return 0


class _Parser(argparse.ArgumentParser):
    """Bad arguments get one line, as every other error does (argparse adds the usage)."""

    def error(self, message):
        self.exit(2, f"error: {message} (see --help)\n")


def _positive(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive whole number, got {text}")
    return value


def _quality(text):
    value = int(text)
    if not 1 <= value <= 100:
        raise argparse.ArgumentTypeError(f"must be between 1 and 100, got {text}")
    return value


def build_parser():
    from .config import RealConfig, TrainConfig
    from .io import WRITE_FORMATS
    from .noise import NOISE_TYPES

    parser = _Parser(prog="python -m denoiser", description="Image denoising with DnCNN, RIDNet and classical filters.")
    parser.add_argument("--verbose", action="store_true", help="let TensorFlow and LiteRT print their start-up lines")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("denoise", help="denoise images: files, folders or globs")
    p.add_argument("inputs", nargs="+")
    p.add_argument("--model", default=None,
                   help="a name from `models`, or a .keras/.tflite path (default: the real-photo model that the app "
                        "uses for photos that are already noisy)")
    p.add_argument("--tile", type=_positive, default=None, help="tile size in pixels (default: the model's)")
    p.add_argument("--batch", type=_positive, default=None, help="tiles per batch (default: the model's)")
    p.add_argument("--sigma", type=float, default=None, help="the noise level to remove, 0-255, for real-photo models and classical filters (default: estimated "
                        "from each photo); the Gaussian models are blind and ignore it")
    p.add_argument("--output", "-o", default=None, help="output file, or folder for several inputs")
    p.add_argument("--format", default=None, choices=list(WRITE_FORMATS))
    p.add_argument("--quality", type=_quality, default=95, help="JPEG quality, 1-100")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs (never an input)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_denoise)

    p = sub.add_parser("add-noise", help="add synthetic noise to images")
    p.add_argument("inputs", nargs="+")
    p.add_argument("--type", default="gaussian", choices=list(NOISE_TYPES))
    p.add_argument("--level", type=float, default=25.0,
                   help="noise level on the 0-255 scale; for --type camera, the ISO in hundreds (16 is ISO 1600)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--output", "-o", default=None)
    p.add_argument("--format", default=None, choices=list(WRITE_FORMATS))
    p.add_argument("--quality", type=_quality, default=95, help="JPEG quality, 1-100")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs (never an input)")
    p.set_defaults(func=cmd_add_noise)

    p = sub.add_parser("evaluate", help="PSNR/SSIM table by the benchmark protocol")
    p.add_argument("folders", nargs="*", help="folders of clean images")
    p.add_argument("--models", nargs="+", default=None, help="models to evaluate (default: the app's default, first in `models`)")
    p.add_argument("--check-manifest", action="store_true",
                   help="re-measure the numbers in models/manifest.json from the folders under --test-root")
    p.add_argument("--test-root", default="../shared/data/test", help="holds CBSD68/, BSD68/, Set12/")
    p.add_argument("--pairs", default=None, metavar="DIR",
                   help="real noisy/clean pairs, paired by name (scene_noisy.png and scene_clean.png, "
                        "scene_Real.JPG and scene_mean.JPG); each is denoised at its estimated level")
    p.add_argument("--scenes", nargs="+", default=None, help="with --pairs: only these scenes")
    p.add_argument("--crop", type=int, default=None, help="with --pairs: a central square of this many pixels")
    p.add_argument("--real-root", default="../shared/data/real", help="with --check-manifest: holds the pair folders")
    p.add_argument("--sigmas", nargs="+", type=float, default=[15, 25, 50])
    p.add_argument("--channels", type=int, choices=[1, 3], default=None)
    p.add_argument("--limit", type=int, default=None, help="use only the first N images")
    p.add_argument("--markdown", default=None, help="also write the table here")
    p.add_argument("--csv", default=None, help="also write CSV here")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("bench", help="throughput of whole-image vs tiled inference, and peak memory")
    p.add_argument("--models", nargs="+", default=None)
    p.add_argument("--size", type=int, default=1024, help="side of the square throughput image")
    p.add_argument("--megapixels", type=float, default=24.0, help="size of the memory test image (0 skips it)")
    p.add_argument("--repeats", type=int, default=2)
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("train", help="train or resume a model (a resumed run keeps its data and seed)")
    p.add_argument("--arch", default="dncnn", choices=["dncnn", "ridnet", "autoencoder"])
    p.add_argument("--channels", type=int, default=3, choices=[1, 3])
    p.add_argument("--train-dir", required=True)
    p.add_argument("--run-dir", required=True)
    p.add_argument("--patch-size", type=int, default=40)
    p.add_argument("--stride", type=int, default=20)
    p.add_argument("--scales", nargs="+", type=float, default=[1.0, 0.9, 0.8, 0.7])
    p.add_argument("--sigma-min", type=float, default=0.0)
    p.add_argument("--sigma-max", type=float, default=55.0, help="equal to --sigma-min for a fixed sigma")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--steps-per-epoch", type=int, default=200)
    p.add_argument("--epochs", type=int, default=50)
    p.add_argument("--lr", type=float, default=TrainConfig.lr)
    p.add_argument("--lr-halve-every", type=int, default=10)
    p.add_argument("--val-fraction", type=float, default=0.05)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-minutes", type=float, default=0.0, help="stop after this many minutes (0: no limit)")
    p.add_argument("--init-from", default=None,
                   help="start a new run from this .keras model's weights (a colour model may start a gray one)")
    p.add_argument("--quantization-aware", action="store_true",
                   help="fine-tune --init-from with dynamic-range int8 rounding in the loop, for `publish --int8-from`")
    p.add_argument("--resume", action="store_true")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("train-real", help="train or resume a real-photo model (level-map input, camera noise)")
    p.add_argument("--arch", default=RealConfig.arch, choices=["dncnn", "ridnet"])
    p.add_argument("--init-from", default=RealConfig.init_from, help="the Gaussian .keras model to start from")
    p.add_argument("--train-dir", required=True, help="clean images for the synthetic camera noise")
    p.add_argument("--pairs-dir", default="", help="real noisy/clean pairs; every 4th scene of a camera is held out")
    p.add_argument("--run-dir", required=True)
    p.add_argument("--patch-size", type=int, default=RealConfig.patch_size)
    p.add_argument("--batch-size", type=int, default=RealConfig.batch_size)
    p.add_argument("--real-share", type=float, default=RealConfig.real_share, help="share of real crops in a batch")
    p.add_argument("--clean-share", type=float, default=RealConfig.clean_share,
                   help="share of clean patches in a batch, to be returned unchanged at their estimated level")
    p.add_argument("--steps-per-epoch", type=int, default=RealConfig.steps_per_epoch)
    p.add_argument("--epochs", type=int, default=RealConfig.epochs)
    p.add_argument("--lr", type=float, default=RealConfig.lr)
    p.add_argument("--lr-halve-every", type=int, default=RealConfig.lr_halve_every)
    p.add_argument("--seed", type=int, default=RealConfig.seed)
    p.add_argument("--max-minutes", type=float, default=0.0, help="stop after this many minutes (0: no limit)")
    p.add_argument("--resume", action="store_true")
    p.add_argument("--mixed-precision", action="store_true", help="compute in bfloat16 (for a GPU)")
    p.add_argument("--workers", type=int, default=0,
                   help="processes that make batches ahead of training (0: in the training loop)")
    p.set_defaults(func=cmd_train_real)

    p = sub.add_parser("export", help="convert a .keras model to LiteRT")
    p.add_argument("model")
    p.add_argument("output")
    p.add_argument("--variant", default="float16", choices=["float32", "float16", "int8_dynamic", "int8_full"])
    p.add_argument("--tile", type=int, default=256)
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--calibration-dir", default=None,
                   help="clean training images to calibrate int8_full on")
    p.add_argument("--calibration-count", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("publish", help="put a trained run into models/: Keras, LiteRT variants, manifest")
    p.add_argument("run_dir")
    p.add_argument("--name", required=True, help="e.g. dncnn_color")
    p.add_argument("--title", required=True, help="e.g. 'DnCNN colour, blind'")
    p.add_argument("--checkpoint", default="best.keras")
    p.add_argument("--eval", nargs="+", default=None, metavar="LABEL=FOLDER", help="evaluation sets, e.g. CBSD68=../shared/data/test/CBSD68")
    p.add_argument("--pairs", default=None, metavar="DIR",
                   help="for a `train-real` run: the real pairs whose held-out scenes it is measured on")
    p.add_argument("--crop", type=int, default=None, help="with --pairs: measure on central squares of this size")
    p.add_argument("--sigmas", nargs="+", type=float, default=[15, 25, 50])
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--calibration-dir", default=None, help="clean training images for int8 calibration (default: the run's)")
    p.add_argument("--tile", type=int, default=256, help="tile side for every variant; wide-margin models want more")
    p.add_argument("--batch", type=int, default=2, help="tiles per LiteRT call")
    p.add_argument("--int8-from", default=None, metavar="RUN_DIR",
                   help="a `train --quantization-aware` run of this model to convert the int8 variants from")
    p.set_defaults(func=cmd_publish)

    p = sub.add_parser("models", help="list the models you can use")
    p.set_defaults(func=cmd_models)
    return parser


# Commands that load Keras whatever the model: the workshop's.
KERAS_COMMANDS = {"train", "train-real", "export", "publish"}


def main(argv=None):
    from .runtimes import VERBOSE_VARIABLE, native_logs_hidden

    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help, or a bad argument (already printed)
        return exc.code
    if args.verbose:
        os.environ[VERBOSE_VARIABLE] = "1"
    else:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if args.command in KERAS_COMMANDS:
        # Imported once here, quietly; TensorFlow prints its start-up lines on import.
        with native_logs_hidden():
            import keras  # noqa: F401
    try:
        return args.func(args)
    except DenoiserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
