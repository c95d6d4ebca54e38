"""The workshop's commands for `python -m denoiser`: train, train-real, export and
publish. `denoiser.cli` lists them and adds their arguments from here only when one of
them runs, so that denoising never imports the workshop. Every default and choice is
read from its owner: the run configs, the architecture registry and the exporter."""

import json
from pathlib import Path

import numpy as np

from ..architectures.registry import ARCHITECTURES
from ..errors import DenoiserError
from ..evaluate import EVALUATION_SIGMAS
from ..camera import fitted_blend
from .config import (LEVEL_INPUTS, SCHEDULE_FIELDS, SYNTHESIZERS, TRAINING_NOISES, RealConfig, TrainConfig,
                     selection_metric)
from .export import EXPORT_BATCH, EXPORT_TILE, VARIANTS

def _level_map_architectures():
    return [name for name, arch in ARCHITECTURES.items() if arch.level_map]


def _schedule_arguments(p, defaults):
    # The schedule's flags default to None: a resumed run keeps its own values (`_schedule`).
    kept = "; a resumed run keeps its own"
    p.add_argument("--epochs", type=int, help=f"default {defaults.epochs}{kept}")
    p.add_argument("--steps-per-epoch", type=int, default=defaults.steps_per_epoch)
    p.add_argument("--lr", type=float, help=f"default {defaults.lr}{kept}")
    p.add_argument("--lr-halve-every", type=int, help=f"default {defaults.lr_halve_every}{kept}")
    p.add_argument("--min-lr", type=float, help=f"the rate never halves below this (default {defaults.min_lr}{kept})")
    p.add_argument("--seed", type=int, default=defaults.seed)
    p.add_argument("--max-minutes", type=float,
                   help=f"stop after this many minutes (0: no limit; default {defaults.max_minutes}{kept})")
    p.add_argument("--resume", action="store_true")


def _schedule(args, defaults):
    """The run's schedule fields: those given on the command line; the others are the
    resumed run's own, or the defaults for a new run. (Defaults on a resumed run once
    took a fine-tuning at 1.5e-6 back to 7.5e-5, and its validation fell 8 dB in one epoch.)"""
    values = {field: getattr(defaults, field) for field in SCHEDULE_FIELDS if hasattr(defaults, field)}
    state = Path(args.run_dir) / "state.json"
    if args.resume and state.exists():
        saved = json.loads(state.read_text())["config"]
        values.update({field: saved[field] for field in values if field in saved})
    given = {field: getattr(args, field, None) for field in values}
    return {**values, **{field: value for field, value in given.items() if value is not None}}


def add_train_arguments(p):
    """The arguments of `train`."""
    defaults = TrainConfig
    p.add_argument("--arch", default=defaults.arch, choices=list(ARCHITECTURES))
    p.add_argument("--channels", type=int, default=defaults.channels, choices=[1, 3])
    p.add_argument("--train-dir", required=True)
    p.add_argument("--run-dir", required=True)
    p.add_argument("--patch-size", type=int, default=defaults.patch_size)
    p.add_argument("--stride", type=int, default=defaults.stride)
    p.add_argument("--scales", nargs="+", type=float, default=list(defaults.scales))
    p.add_argument("--sigma-min", type=float, default=defaults.sigma_range[0])
    p.add_argument("--sigma-max", type=float, default=defaults.sigma_range[1],
                   help="equal to --sigma-min for a fixed sigma")
    p.add_argument("--noise", nargs="+", default=list(defaults.noise), choices=TRAINING_NOISES,
                   help="noise types to mix, one per patch at a level drawn between --sigma-min and --sigma-max "
                        "(camera noise trains with train-real)")
    p.add_argument("--batch-size", type=int, default=defaults.batch_size)
    p.add_argument("--val-fraction", type=float, default=defaults.val_fraction)
    p.add_argument("--init-from", default=defaults.init_from,
                   help="start a new run from this .keras model's weights (a colour model may start a gray one)")
    p.add_argument("--quantization-aware", action="store_true",
                   help="fine-tune --init-from with dynamic-range int8 rounding in the loop, for `publish --int8-from`")
    p.add_argument("--full-integer", action="store_true",
                   help="with --quantization-aware: full-integer int8 rounding, every tensor between layers too")
    p.add_argument("--data-parallel", action="store_true", default=None,
                   help="split each batch over every accelerator (JAX backend; several hosts through "
                        "KERAS_DISTRIBUTION_JOB_ADDRESSES, _NUM_PROCESSES and _PROCESS_ID)")
    p.add_argument("--quiet", action="store_true")
    _schedule_arguments(p, defaults)
    p.set_defaults(func=cmd_train)


def add_train_real_arguments(p):
    """The arguments of `train-real`."""
    defaults = RealConfig
    p.add_argument("--arch", default=defaults.arch, choices=_level_map_architectures())
    p.add_argument("--init-from", default=defaults.init_from, help="the Gaussian .keras model to start from")
    p.add_argument("--train-dir", required=True, help="clean images for the synthetic camera noise")
    p.add_argument("--pairs-dir", default=defaults.pairs_dir,
                   help="real noisy/clean pairs; every 4th scene of a camera is held out")
    p.add_argument("--hold-out-camera", default=defaults.hold_out_camera, metavar="CAMERA",
                   help="validate on every scene of this camera (e.g. nikon800) and train on the others")
    p.add_argument("--run-dir", required=True)
    p.add_argument("--patch-size", type=int, default=defaults.patch_size)
    p.add_argument("--batch-size", type=int, default=defaults.batch_size)
    p.add_argument("--real-share", type=float, default=defaults.real_share, help="share of real crops in a batch")
    p.add_argument("--clean-share", type=float, default=defaults.clean_share,
                   help="share of clean patches in a batch, to be returned unchanged at their estimated level")
    p.add_argument("--level-input", default=defaults.level_input, choices=LEVEL_INPUTS,
                   help="feed noisy patches the level the app estimates on them, or their true noise level")
    p.add_argument("--synthetic", default=defaults.synthetic, choices=SYNTHESIZERS,
                   help="the synthetic share's camera: round 4's, or the one fitted to the training cameras")
    p.add_argument("--mean-share", type=float, default=defaults.mean_share,
                   help="share of fitted synthetic patches cut from the training scenes' means")
    p.add_argument("--mixed-precision", action="store_true", help="compute in bfloat16 (for a GPU)")
    p.add_argument("--workers", type=int, default=0,
                   help="processes that make batches ahead of training (0: in the training loop)")
    _schedule_arguments(p, defaults)
    p.set_defaults(func=cmd_train_real)


def add_export_arguments(p):
    """The arguments of `export`."""
    p.add_argument("model")
    p.add_argument("output")
    p.add_argument("--variant", default="float16", choices=list(VARIANTS))
    p.add_argument("--tile", type=int, default=EXPORT_TILE)
    p.add_argument("--batch", type=int, default=EXPORT_BATCH)
    p.add_argument("--calibration-dir", default=None, help="clean training images to calibrate int8_full on")
    p.add_argument("--calibration-count", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--overwrite", action="store_true", help="replace an existing output (never the model itself)")
    p.set_defaults(func=cmd_export)


def add_publish_arguments(p):
    """The arguments of `publish`."""
    p.add_argument("run_dir")
    p.add_argument("--name", required=True, help="e.g. dncnn_color")
    p.add_argument("--title", required=True, help="e.g. 'DnCNN colour, blind'")
    p.add_argument("--checkpoint", default="best.keras")
    p.add_argument("--eval", nargs="+", default=None, metavar="LABEL=FOLDER",
                   help="evaluation sets, e.g. CBSD68=../shared/data/test/CBSD68")
    p.add_argument("--pairs", default=None, metavar="DIR",
                   help="for a `train-real` run: the real pairs whose held-out scenes it is measured on")
    p.add_argument("--crop", type=int, default=None, help="with --pairs: measure on central squares of this size")
    p.add_argument("--sigmas", nargs="+", type=float, default=list(EVALUATION_SIGMAS))
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--calibration-dir", default=None,
                   help="clean training images for int8 calibration (default: the run's)")
    p.add_argument("--tile", type=int, default=EXPORT_TILE,
                   help="the LiteRT files' input side as written (the runtime resizes it to each image's tiles)")
    p.add_argument("--batch", type=int, default=EXPORT_BATCH, help="the LiteRT files' input batch as written")
    p.add_argument("--int8-from", default=None, metavar="RUN_DIR",
                   help="a `train --quantization-aware` run of this model to convert the int8 variants from")
    p.add_argument("--gray-counterpart", default=None, metavar="FAMILY",
                   help="a published family of gray models that gray images go to "
                        "(the colour Gaussian DnCNN: dncnn_gray)")
    p.set_defaults(func=cmd_publish)


ARGUMENTS = {"train": add_train_arguments, "train-real": add_train_real_arguments,
             "export": add_export_arguments, "publish": add_publish_arguments}


def configure(command, parser):
    """Adds `command`'s arguments and its function to its subparser."""
    ARGUMENTS[command](parser)


def cmd_train(args):
    """`train`: a run on added noise, new or resumed."""
    from .train import train

    config = TrainConfig(
        arch=args.arch, channels=args.channels, train_dir=args.train_dir, run_dir=args.run_dir,
        patch_size=args.patch_size, stride=args.stride, scales=tuple(args.scales),
        sigma_range=(args.sigma_min, args.sigma_max), batch_size=args.batch_size,
        steps_per_epoch=args.steps_per_epoch, seed=args.seed, val_fraction=args.val_fraction,
        init_from=args.init_from or "", quantization_aware=args.quantization_aware, full_integer=args.full_integer,
        noise=tuple(args.noise), **_schedule(args, TrainConfig),
    )
    state = train(config, resume=args.resume, verbose=2 if args.quiet else 1)
    metric = selection_metric(config)
    print(f"epoch {state['epoch']}, best validation PSNR ({metric}): {state.get('best_' + metric, float('nan')):.2f} dB")
    return 0


def cmd_train_real(args):
    """`train-real`: a real-photo run, new or resumed."""
    from .real_training import train_real

    config = RealConfig(
        arch=args.arch, init_from=args.init_from, train_dir=args.train_dir, pairs_dir=args.pairs_dir,
        run_dir=args.run_dir, patch_size=args.patch_size, batch_size=args.batch_size, real_share=args.real_share,
        clean_share=args.clean_share, steps_per_epoch=args.steps_per_epoch, seed=args.seed,
        mixed_precision=args.mixed_precision, hold_out_camera=args.hold_out_camera, level_input=args.level_input,
        synthetic=args.synthetic, mean_share=args.mean_share,
        # The range fitted without the held-out camera, kept in the run's record.
        camera_range=(fitted_blend(exclude=[args.hold_out_camera] if args.hold_out_camera else []).as_dict()
                      if args.synthetic == "fitted" else {}),
        **_schedule(args, RealConfig),
    )
    state = train_real(config, resume=args.resume, workers=args.workers, log=lambda line: print(line, flush=True))
    print(f"epoch {state['epoch']}, best validation PSNR on held-out real scenes: "
          f"{state.get('best_val_psnr', float('nan')):.2f} dB")
    return 0


def cmd_export(args):
    """`export`: one LiteRT file of a Keras model."""
    from ..catalog import load_keras_model
    from ..outputs import check_single_output
    from .export import calibration_set, export_file

    if Path(args.output).suffix.lower() != ".tflite":
        raise DenoiserError(f"{args.output}: a LiteRT model is a .tflite file; name it NAME.tflite")
    check_single_output(args.output, [args.model], overwrite=args.overwrite)
    model = load_keras_model(args.model)
    representative = None
    if args.variant == "int8_full":
        if not args.calibration_dir:
            raise DenoiserError("int8_full needs --calibration-dir, a folder of clean training images")
        representative = calibration_set(args.calibration_dir, channels=model.input_shape[-1], tile=args.tile,
                                         count=args.calibration_count, rng=np.random.default_rng(args.seed))
    path, output = export_file(model, args.output, args.variant, tile=args.tile, batch=args.batch,
                               representative=representative, overwrite=args.overwrite)
    print(f"{path}: {args.variant}, tiles {args.batch}x{args.tile}x{args.tile}, outputs the {output}")
    return 0


def _run(folder, checkpoint):
    """(checkpoint path, state) of a training run folder."""
    state = Path(folder) / "state.json"
    if not state.exists():
        raise DenoiserError(f"{folder} is not a training run: it has no state.json")
    return Path(folder) / checkpoint, json.loads(state.read_text())


def cmd_publish(args):
    """`publish`: a run into `models/`, every variant measured."""
    from .publish import publish

    checkpoint, state = _run(args.run_dir, args.checkpoint)
    publish(checkpoint, args.name, title=args.title, run_state=state,
            eval_sets=dict(item.split("=", 1) for item in args.eval or ()), sigmas=args.sigmas, limit=args.limit,
            train_dir=args.calibration_dir, pairs_dir=args.pairs, crop=args.crop, tile=args.tile, batch=args.batch,
            int8_from=_run(args.int8_from, args.checkpoint) if args.int8_from else None,
            gray_counterpart=args.gray_counterpart)
    return 0
