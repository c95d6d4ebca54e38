"""Command line: `python -m denoiser {denoise,add-noise,evaluate,noise-profile,bench,models}` and the
workshop's `{train,train-real,export,publish}`, whose arguments `denoiser.training.commands`
adds only when one of them runs."""

import argparse
import os
import sys
from pathlib import Path

import numpy as np

from .errors import DenoiserError
from .outputs import DENOISED_SUFFIX, check_summary, expand_inputs, plan_outputs, plan_tables


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


def cmd_denoise(args):
    """`denoise`: each input through a model, written beside it or under --output."""
    from .catalog import default_for
    from .engine import check_tiling

    if args.sigma is not None and not 0 <= args.sigma <= 255:
        raise DenoiserError(f"--sigma must be between 0 and 255, got {args.sigma}")
    ray = args.engine == "ray"
    files = expand_inputs(args.inputs, skip_suffix=DENOISED_SUFFIX)
    if args.resume and args.overwrite:
        raise DenoiserError("--resume keeps finished outputs and --overwrite redoes them: choose one")
    files, targets = plan_outputs(files, args.output, suffix=DENOISED_SUFFIX, fmt=args.format,
                                  overwrite=args.overwrite, skip_existing=ray or args.resume)
    chosen = args.model or default_for("real_photo")
    options = dict(level=args.sigma, tile=args.tile, batch=args.batch, fmt=args.format, quality=args.quality,
                   ensemble=args.ensemble, overwrite=args.overwrite)
    if not files:
        print("every output exists already: nothing to do")
        return 0
    if ray:
        from .catalog import load_runtime
        from .ray_engine import denoise_files

        # Checked here, before any work, as the local loop does: the workers would fail every file.
        if args.tile is not None:
            check_tiling(load_runtime(chosen), args.tile)

        summary = check_summary(Path(args.summary) if args.summary else _summary_beside(targets, args.output))
        failed = denoise_files(files, targets, chosen, workers=args.workers, address=args.ray_address,
                               summary=summary, show_progress=not args.quiet, **options)
        return 1 if failed else 0
    from .batch import ModelShelf, denoise_file

    shelf = ModelShelf(chosen)
    if args.tile is not None:
        check_tiling(shelf.runtimes[chosen], args.tile)
    failed = []
    for source, target in zip(files, targets):
        bar = _Bar(source.name, enabled=not args.quiet)
        try:
            done = denoise_file(source, target, shelf, progress=bar, **options)
        except DenoiserError as exc:
            if len(files) == 1:
                raise
            # One bad file among many does not stop the others, as with --engine ray.
            print(f"error: {exc}" if source.name in str(exc) else f"error: {source}: {exc}", file=sys.stderr)
            failed.append(source)
            continue
        finally:
            bar.close()
        if done.new_model and done.model != chosen:
            print(f"gray images go to {done.model}: {chosen} is a colour model")
        print(f"{source} -> {target}" + (f" (estimated noise level {done.level:.1f})" if done.estimated else "")
              + (DROPPED_ALPHA if done.dropped_alpha else "") + _noted(done.notes))
    return _failures(failed, len(files))


def _noted(notes):
    """A file's notes (`io.Picture.notes`) at the end of its line."""
    return "".join(f" ({note})" for note in notes)


def _failures(failed, total):
    """The exit status of a run over `total` files: 0, 1 when some failed, 2 when all did."""
    if not failed:
        return 0
    print(f"{len(failed)} of {total} files failed; the others were written", file=sys.stderr)
    return 2 if len(failed) == total else 1


DROPPED_ALPHA = " (JPEG holds no transparency: the alpha channel was dropped)"


def _summary_beside(targets, output):
    """Where a Ray run's summary goes by default: the output folder, or the current one."""
    folder = Path(output) if output and Path(output).is_dir() else (targets[0].parent if targets else Path("."))
    return folder / "denoise_summary.csv"


def cmd_add_noise(args):
    """`add-noise`: each input with noise of a type and level added, for trying the models."""
    from .io import drops_alpha, load_image, save_picture
    from .noise import add_noise, check_level

    check_level(args.level)
    suffix = f"_{args.type}{args.level:g}"
    files = expand_inputs(args.inputs, skip_suffix=suffix)
    files, targets = plan_outputs(files, args.output, suffix=suffix, fmt=args.format, overwrite=args.overwrite)
    rng = np.random.default_rng(args.seed)
    for source, target in zip(files, targets):
        picture = load_image(source)
        noisy = add_noise(picture.pixels, args.type, args.level, rng=rng)
        save_picture(picture, noisy, target, fmt=args.format, quality=args.quality, overwrite=args.overwrite)
        print(f"{source} -> {target}" + (DROPPED_ALPHA if drops_alpha(picture, target, args.format) else "")
              + _noted(picture.notes))
    return 0


def cmd_noise_profile(args):
    """`noise-profile`: what a photo's noise is, measured against a clean reference or
    read from the photo alone."""
    import json

    from .io import load_image
    from .profile import profile

    picture = load_image(args.photo)
    clean = None
    if args.clean:
        clean = load_image(args.clean).pixels
        if clean.shape != picture.pixels.shape:
            raise DenoiserError(f"{args.clean} is {clean.shape[1]}x{clean.shape[0]}x{clean.shape[2]}, but {args.photo} "
                                f"is {picture.width}x{picture.height}x{picture.channels}: a reference must match")
    found = profile(picture.pixels, clean, jpeg_quality=picture.jpeg_quality)
    if args.json:
        print(json.dumps(found.as_dict(), indent=1))
        return 0
    how = f"measured against {args.clean}" if clean is not None else "read from the photo's flattest parts"
    print(f"{args.photo}: noise {how}" + _noted(picture.notes))
    print(f"  level (std, 0-255): {found.std:.2f}")
    print("  correlation at " + ", ".join(f"{lag} px {value:.2f}" for lag, value in found.correlation.items()))
    print(f"  luminance {found.luma_std:.2f}, colour {found.chroma_std:.2f} (ratio {found.luma_chroma:.2f})")
    print("  level by brightness: " + ", ".join(
        f"{centre:.0f}: {np.mean(level):.2f}" for centre, level in zip(found.bins, found.levels)
        if not np.isnan(level[0])))
    if found.jpeg_quality is not None:
        print(f"  JPEG quality (from its tables): {found.jpeg_quality}")
    return 0


def cmd_evaluate(args):
    """`evaluate`: the protocol's table on added noise or real pairs, or the manifest check."""
    from .evaluate import to_csv, to_markdown
    from .io import write_atomically

    if args.check_manifest:
        return check_manifest(args)
    reports = plan_tables({"markdown": args.markdown, "csv": args.csv},
                          [*args.folders, *([args.pairs] if args.pairs else [])], overwrite=args.overwrite)
    if args.pairs:
        rows = evaluate_real_pairs(args)
    elif not args.folders:
        raise DenoiserError("name at least one folder of clean images, or use --pairs or --check-manifest")
    else:
        rows = evaluate_synthetic(args)
    markdown = to_markdown(rows)
    print(markdown)
    texts = {"markdown": markdown + "\n", "csv": to_csv(rows)}
    for kind, target in reports.items():
        write_atomically(target, texts[kind].encode(), overwrite=args.overwrite)
    return 0


def evaluate_real_pairs(args):
    """The rows of each model on the real pairs of --pairs."""
    from .catalog import default_for, load_runtime
    from .evaluate import evaluate_pairs

    if args.crop is not None and args.crop < 16:
        raise DenoiserError(f"--crop must be at least 16 pixels, got {args.crop}")
    runtimes = {spec: load_runtime(spec) for spec in args.models or [default_for("real_photo")]}
    bar = _Bar(f"pairs in {Path(args.pairs).name}", enabled=not args.quiet, unit="pair")
    try:
        return evaluate_pairs(runtimes, args.pairs, scenes=args.scenes, camera=args.camera, crop=args.crop,
                              progress=bar)
    finally:
        bar.close()


def evaluate_synthetic(args):
    """The rows of each model on each test set with added noise."""
    from .catalog import default_for, load_runtime, read_manifest
    from .evaluate import default_levels, evaluate

    manifest = read_manifest()
    levels = args.levels or default_levels(args.noise)
    rows = []
    for spec in args.models or [default_for("gaussian")]:
        runtime = load_runtime(spec)
        channels = args.channels or (manifest.get(spec, {}).get("channels") or runtime.channels or 3)
        for folder in args.folders:
            bar = _Bar(f"{spec} on {Path(folder).name}", enabled=not args.quiet, unit="image")
            try:
                rows += evaluate(runtime, folder, levels, channels=channels, noise=args.noise, limit=args.limit,
                                 progress=bar)
            finally:
                bar.close()
    return rows


def check_manifest(args, tolerance=0.01):
    """Re-measures every manifest number from the test folders; exit 1 on any difference."""
    from .catalog import load_runtime, read_manifest
    from .evaluate import manifest_differences

    manifest = read_manifest()
    names = [name for name in manifest if name in args.models] if args.models else list(manifest)
    if not names:
        raise DenoiserError("no models in models/manifest.json to check")
    print("| model | set | noise | level | manifest PSNR | measured PSNR | difference |")
    print("|---|---|---|---|---|---|---|")
    worst = 0.0
    for name in names:
        for row in manifest_differences(name, manifest[name], load_runtime(name), test_root=args.test_root,
                                        real_root=args.real_root):
            worst = max(worst, abs(row["difference"]))
            print(f"| {name} | {row['set']} | {row['noise']} | {row['level']} | {row['recorded']:.3f} | "
                  f"{row['measured']:.3f} | {row['difference']:+.3f} |")
    print(f"largest difference {worst:.3f} dB (tolerance {tolerance} dB)")
    return 0 if worst <= tolerance else 1


def cmd_bench(args):
    """`bench`: whole-image and tiled throughput of each model here, and peak memory."""
    from .bench import bench
    from .catalog import available_models

    known = available_models()
    specs = args.models or [m for m in known if m not in ("median", "bilateral")]
    for spec in specs:
        if spec not in known and not Path(spec).is_file():
            raise DenoiserError(f"unknown model {spec!r}: not a file, and not one of: {', '.join(known)}")
    print(f"bench: {os.cpu_count()} CPU cores, {args.size}x{args.size} image for throughput, "
          f"{args.megapixels:g} MP image for memory")
    results = bench(specs, size=args.size, megapixels=args.megapixels, repeats=args.repeats)
    return 0 if results else 1


def cmd_models(args):
    """`models`: every shipped model, its card, and its speed measured here; with
    `--markdown`, the manifest's table of models alone (docs/models.md)."""
    from .catalog import PURPOSE_WORDS, available_models, default_for, model_card, model_table, model_title
    from .catalog import read_manifest
    from .speed import cache_path, machine, measured_speed

    if args.markdown:
        print(model_table(), end="")
        return 0
    manifest = read_manifest()
    names = available_models()
    if not args.no_measure and any(measured_speed(name, measure=False) is None for name in names):
        print(f"timing each model once on this machine ({machine()}); kept in {cache_path()}", file=sys.stderr)
    speeds = {name: measured_speed(name, measure=not args.no_measure) for name in names}
    defaults = {default_for(purpose): f" (the default for {PURPOSE_WORDS[purpose].removeprefix('images with ')})"
                for purpose in ("gaussian", "mixed_noise", "real_photo")}
    for name, speed in speeds.items():
        default = defaults.get(name, "") if name in manifest else ""
        here = (f"CPU: {speed[0]:.2f} MP/s measured here" + (" (cached)" if speed[1] else "")) if speed else \
            "not yet timed on this machine"
        print(f"{name:<20} {model_title(name, manifest)}{default}; " + "; ".join([*model_card(name, manifest), here]))
    return 0


class _Parser(argparse.ArgumentParser):
    """Bad arguments get one line, as every other error does (argparse adds the usage)."""

    def error(self, message):
        self.exit(2, f"error: {message} (see --help)\n")


BENCH_MAX_SIDE = 8192  # 67 megapixels, past the app's 50 MP limit; larger would only exhaust memory
BENCH_MAX_REPEATS = 20


def _whole_number(low, high=None):
    """An argparse type: a whole number from `low` to `high` (no upper bound when None)."""
    def parse(text):
        value = int(text)
        if value < low or (high is not None and value > high):
            bound = f"from {low} to {high}" if high is not None else f"of at least {low}"
            raise argparse.ArgumentTypeError(f"must be a whole number {bound}, got {text}")
        return value

    return parse


_positive, _non_negative = _whole_number(1), _whole_number(0)
_repeats, _quality = _whole_number(1, BENCH_MAX_REPEATS), _whole_number(1, 100)


def _side(text):
    from .engine import MIN_SIDE

    value = int(text)
    if not MIN_SIDE <= value <= BENCH_MAX_SIDE:
        raise argparse.ArgumentTypeError(f"must be {MIN_SIDE} to {BENCH_MAX_SIDE} pixels, got {text}")
    return value


def _non_negative_float(text):
    value = float(text)
    if not value >= 0:  # NaN too
        raise argparse.ArgumentTypeError(f"must be a number of 0 or more, got {text}")
    return value


BENCH_MAX_MEGAPIXELS = BENCH_MAX_SIDE**2 / 1e6


def _bench_megapixels(text):
    """0 (no memory run) up to BENCH_MAX_SIDE squared: `inf` or 1e9 would only exhaust memory."""
    value = _non_negative_float(text)
    if value > BENCH_MAX_MEGAPIXELS:
        raise argparse.ArgumentTypeError(f"must be 0 to {BENCH_MAX_MEGAPIXELS:.0f} megapixels, got {text}")
    return value


def _level(text):
    value = float(text)
    if not 0 < value <= 255:
        raise argparse.ArgumentTypeError(f"must be a noise level above 0 and at most 255, got {text}")
    return value


# The workshop's commands and what `--help` says of them; they load Keras whatever the model.
WORKSHOP_COMMANDS = {
    "train": "train or resume a model (a resumed run keeps its data and seed)",
    "train-real": "train or resume a real-photo model (level-map input, camera noise)",
    "export": "convert a .keras model to LiteRT",
    "publish": "put a trained run into models/: Keras, LiteRT variants, manifest",
}


def build_parser(command=None):
    """The parser; a workshop `command`'s arguments are added only when it is that one."""
    parser = _Parser(prog="python -m denoiser", description="Image denoising with DnCNN, RIDNet and classical filters.")
    parser.add_argument("--verbose", action="store_true", help="let TensorFlow and LiteRT print their start-up lines")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_denoise(sub.add_parser("denoise", help="denoise images: files, folders or globs"))
    _add_add_noise(sub.add_parser("add-noise", help="add synthetic noise to images"))
    _add_evaluate(sub.add_parser("evaluate", help="PSNR/SSIM table by the benchmark protocol"))
    profile = sub.add_parser("noise-profile", help="what a photo's noise is: level by brightness, correlation, colour")
    profile.add_argument("photo")
    profile.add_argument("--clean", help="a clean reference of the same scene (e.g. the mean of many shots)")
    profile.add_argument("--json", action="store_true", help="print the profile as JSON")
    profile.set_defaults(func=cmd_noise_profile)
    _add_bench(sub.add_parser("bench", help="throughput of whole-image vs tiled inference, and peak memory"))
    for name, help_text in WORKSHOP_COMMANDS.items():
        p = sub.add_parser(name, help=help_text)
        if name == command:
            from .training.commands import configure

            configure(name, p)
    models = sub.add_parser("models", help="list the models you can use, with their speed on this machine")
    models.add_argument("--markdown", action="store_true",
                        help="print the manifest's table of models as Markdown (docs/models.md), timing nothing")
    models.add_argument("--no-measure", action="store_true",
                        help="show only speeds timed here before (the first listing times every model, about a minute)")
    models.set_defaults(func=cmd_models)
    return parser


def _add_denoise(p):
    from .io import WRITE_FORMATS

    p.add_argument("inputs", nargs="+")
    p.add_argument("--model", default=None,
                   help="a name from `models`, or a .keras/.tflite path (default: the real-photo model that the app "
                        "uses for photos that are already noisy)")
    p.add_argument("--tile", type=_positive, default=None, help="tile size in pixels (default: the model's)")
    p.add_argument("--batch", type=_positive, default=None, help="tiles per batch (default: the model's)")
    p.add_argument("--sigma", type=float, default=None, help="the noise level to remove, 0-255, for real-photo models and classical filters (default: estimated "
                        "from each photo); the Gaussian models are blind and ignore it")
    p.add_argument("--ensemble", action="store_true",
                   help="best quality: the mean over the eight flips and rotations of each image (eight times the time)")
    p.add_argument("--output", "-o", default=None, help="output file, or folder for several inputs")
    p.add_argument("--format", default=None, choices=list(WRITE_FORMATS))
    p.add_argument("--quality", type=_quality, default=95, help="JPEG quality, 1-100")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs (never an input)")
    p.add_argument("--resume", action="store_true",
                   help="skip the inputs whose output exists (finished by an earlier, stopped run)")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--engine", choices=["local", "ray"], default="local",
                   help="ray: a Ray Data pipeline of worker processes that each hold the model (pip install -r "
                        "requirements-scale.txt); a failed file goes to the summary and the others go on, and a "
                        "re-run skips the outputs that exist")
    p.add_argument("--workers", type=_positive, default=None,
                   help="with --engine ray: worker processes, each held to one thread (default: one per core)")
    p.add_argument("--ray-address", default=None,
                   help="with --engine ray: an existing Ray cluster (default: $RAY_ADDRESS, or Ray started here)")
    p.add_argument("--summary", default=None,
                   help="with --engine ray: the CSV of every file's status, error and seconds "
                        "(default: denoise_summary.csv in the output folder)")
    p.set_defaults(func=cmd_denoise)


def _add_add_noise(p):
    from .io import WRITE_FORMATS
    from .noise import NOISE_TYPES

    p.add_argument("inputs", nargs="+")
    p.add_argument("--type", default="gaussian", choices=list(NOISE_TYPES))
    p.add_argument("--level", type=float, default=25.0,
                   help="noise level on the 0-255 scale; for --type camera, the ISO in hundreds (16 is ISO 1600)")
    p.add_argument("--seed", type=_non_negative, default=0)
    p.add_argument("--output", "-o", default=None)
    p.add_argument("--format", default=None, choices=list(WRITE_FORMATS))
    p.add_argument("--quality", type=_quality, default=95, help="JPEG quality, 1-100")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs (never an input)")
    p.set_defaults(func=cmd_add_noise)


def _add_evaluate(p):
    from .evaluate import EVALUATION_SIGMAS
    from .noise import NOISE_TYPES

    p.add_argument("folders", nargs="*", help="folders of clean images")
    p.add_argument("--models", nargs="+", default=None, help="models to evaluate (default: the app's default, first in `models`)")
    p.add_argument("--check-manifest", action="store_true",
                   help="re-measure the numbers in models/manifest.json from the folders under --test-root")
    p.add_argument("--test-root", default="../shared/data/test", help="holds CBSD68/, BSD68/, Set12/")
    p.add_argument("--pairs", default=None, metavar="DIR",
                   help="real noisy/clean pairs, paired by name (scene_noisy.png and scene_clean.png, "
                        "scene_Real.JPG and scene_mean.JPG); each is denoised at its estimated level")
    p.add_argument("--scenes", nargs="+", default=None, help="with --pairs: only these scenes")
    p.add_argument("--camera", default=None,
                   help="with --pairs: only this camera's scenes (e.g. nikon800), for a model trained without it")
    p.add_argument("--crop", type=int, default=None, help="with --pairs: a central square of this many pixels")
    p.add_argument("--real-root", default="../shared/data/real", help="with --check-manifest: holds the pair folders")
    p.add_argument("--noise", default="gaussian", choices=list(NOISE_TYPES),
                   help="the noise added to the clean images, seeded per image")
    p.add_argument("--levels", "--sigmas", nargs="+", type=_level, default=None,
                   help=f"noise levels on the 0-255 scale (default: {' '.join(map(str, EVALUATION_SIGMAS))} for "
                        "Gaussian noise, the demo's level for the others)")
    p.add_argument("--channels", type=int, choices=[1, 3], default=None)
    p.add_argument("--limit", type=_positive, default=None, help="use only the first N images")
    p.add_argument("--markdown", default=None, help="also write the table here (a new file, or --overwrite)")
    p.add_argument("--csv", default=None, help="also write CSV here (a new file, or --overwrite)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --markdown or --csv file")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_evaluate)


def _add_bench(p):
    p.add_argument("--models", nargs="+", default=None)
    p.add_argument("--size", type=_side, default=1024, help="side of the square throughput image")
    p.add_argument("--megapixels", type=_bench_megapixels, default=24.0,
                   help="size of the memory test image (0 skips it)")
    p.add_argument("--repeats", type=_repeats, default=3, help="timings of each, taken in turns; the shortest is kept")
    p.set_defaults(func=cmd_bench)


def _command(argv):
    """(the command that `argv` names, whether --verbose comes before it): what the full
    parser depends on, read by a parser of those two alone."""
    first = argparse.ArgumentParser(add_help=False, exit_on_error=False)
    first.add_argument("--verbose", action="store_true")
    first.add_argument("command", nargs="?")
    try:
        known, _ = first.parse_known_args(argv)
    except argparse.ArgumentError:  # the full parser says what is wrong
        return None, False
    return known.command, known.verbose


def main(argv=None):
    """`python -m denoiser`: runs one command; returns its exit status (one-line errors, no
    traceback)."""
    # A file name that is no valid UTF-8 (a Latin-1 byte) is printed with escapes, not fatal.
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    try:
        return _main(argv)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _main(argv):
    from .runtimes import VERBOSE_VARIABLE, native_logs_hidden

    argv = sys.argv[1:] if argv is None else list(argv)
    command, verbose = _command(argv)
    if verbose:
        os.environ[VERBOSE_VARIABLE] = "1"
    else:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if command in WORKSHOP_COMMANDS:
        # The workshop loads Keras whatever the model. Imported once here, quietly:
        # TensorFlow prints its start-up lines on import.
        with native_logs_hidden():
            import keras  # noqa: F401
    try:
        args = build_parser(command).parse_args(argv)
    except SystemExit as exc:  # --help, or a bad argument (already printed)
        return exc.code
    try:
        return args.func(args)
    except DenoiserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
