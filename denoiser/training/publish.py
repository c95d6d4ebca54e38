"""Publishing a trained model into `models/`: the Keras file, its LiteRT
variants, and a manifest entry each with size, checksum, training facts,
protocol PSNR/SSIM and CPU throughput.

Both int8 kinds are measured; only the one with the better trade of quality
and speed ships; the comparison of all of them goes to `models/QUANTIZATION.md`.
"""

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ..architectures.graph import input_multiple, receptive_radius
from ..bench import tiled_rate
from ..architectures.registry import get_architecture
from ..catalog import MANIFEST, MIXED_DEFAULT_KEY, MODELS_DIR, load_keras_model, tiling
from ..errors import DenoiserError
from ..evaluate import EVALUATION_SIGMAS, default_levels, evaluate, evaluate_pairs
from ..runtimes import KerasRuntime, LiteRTRuntime
from ..speed import headline_psnr
from .export import EXPORT_BATCH, EXPORT_TILE, conversion_samples, export_file, real_conversion_samples
from .config import GAUSSIAN_ONLY
from .train import float32_copy

PRECISION = {"float16": "float16", "int8_dynamic": "int8 dynamic range", "int8_full": "int8 full integer"}
THROUGHPUT_SIDE = 1024


def sha256(path):
    """The hex SHA-256 of the file at `path`."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _scores(runtime, channels, eval_sets, levels, limit, progress, noise="gaussian"):
    """{set label: {level: PSNR, SSIM, noisy PSNR, images}} for `noise` at `levels`."""
    quality = {}
    for label, folder in eval_sets.items():
        rows = evaluate(runtime, folder, levels, channels=channels, noise=noise, limit=limit)
        quality[label] = {
            f"{row.level:g}": {"psnr": round(row.psnr, 3), "ssim": round(row.ssim, 4),
                               "psnr_noisy": round(row.psnr_noisy, 3), "images": row.images}
            for row in rows
        }
        progress(f"{runtime.name} on {label}, {noise}: " + ", ".join(f"{r.level:g} {r.psnr:.2f} dB" for r in rows))
    return quality


def measure(runtime, channels, eval_sets, sigmas, limit, progress, noises=()):
    """(the entry's fields: Gaussian `quality` at `sigmas`, and the `noise_quality` of each
    other type in `noises` at its demo level, if any; CPU speed)."""
    fields = {"quality": _scores(runtime, channels, eval_sets, sigmas, limit, progress)}
    others = {noise: _scores(runtime, channels, eval_sets, default_levels(noise), limit, progress, noise)
              for noise in noises if noise != "gaussian"}
    if others:
        fields["noise_quality"] = others
    return fields, _speed(runtime, progress)


def _speed(runtime, progress):
    speed = tiled_rate(runtime, size=THROUGHPUT_SIDE)
    progress(f"{runtime.name}: {speed:.3f} MP/s tiled on this CPU")
    return speed


def _entry(path, *, title, runtime, precision, fields, cpu_mp_s, common):
    return {
        "file": path.name, "title": title, **common, "file_mb": round(path.stat().st_size / 1e6, 3),
        "sha256": sha256(path), "runtime": runtime, "precision": precision, **fields, "cpu_mp_s": round(cpu_mp_s, 3),
    }


def training_facts(run_state, data):
    """What the manifest records of a training run: its data, length, time and best
    validation score (`best_val_psnr_25` of a Gaussian run, `best_val_psnr` of a
    real-photo one)."""
    config = run_state["config"]
    facts = {
        "data": data, "epochs": run_state["epoch"], "steps": run_state["steps"],
        "patches_seen": run_state["patches_seen"], "patch_size": config["patch_size"],
        "batch_size": config["batch_size"], "train_hours": round(run_state["train_seconds"] / 3600, 2),
    }
    for key, label in (("best_val_psnr_25", "best_validation_psnr_25"), ("best_val_psnr", "best_validation_psnr_real"),
                       ("best_val_psnr_mean", "best_validation_psnr_mean_over_noise")):
        if key in run_state:
            facts[label] = round(run_state[key], 3)
    if config.get("init_from"):
        facts["initialised_from"] = config["init_from"]
    if tuple(config.get("noise", GAUSSIAN_ONLY)) != GAUSSIAN_ONLY:
        facts["noise"] = list(config["noise"])
    if run_state.get("device"):
        facts["device"] = run_state["device"]
    return facts


def _fine_tuning(run_state):
    return {"run": Path(run_state["config"]["run_dir"]).name,
            **training_facts(run_state, f"{Path(run_state['config']['train_dir']).name}")}


@dataclass(frozen=True)
class Yardstick:
    """How a run's variants are measured, by the kind of run, and what their entries
    say of it: `measure(runtime)` gives (the entry's quality fields, MP/s)."""

    measure: Callable
    data: str
    sigma_range: tuple
    int8_kinds: tuple
    default_key: str | None
    representative: np.ndarray | None = None
    flags: dict = field(default_factory=dict)


def publish(model_path, name, *, title, run_state, eval_sets=None, sigmas=EVALUATION_SIGMAS, limit=None,
            train_dir=None, pairs_dir=None, crop=None, int8_from=None, models_dir=MODELS_DIR, tile=EXPORT_TILE,
            batch=EXPORT_BATCH, progress=print):
    """Writes `name`.keras, `name`_fp16.tflite and `name`_int8.tflite with their manifest
    entries, and the quantization report.

    A run on added noise is measured on `eval_sets` ({label: folder}) at `sigmas`, and
    at the demo's level of each other noise type it trained on; both int8 kinds are
    converted (calibrated on `train_dir`, by default the run's) and the better trade
    ships. A real-photo run (`pairs_dir` given) is measured on its held-out scenes of
    `pairs_dir`, on central `crop`-pixel squares (or whole), at the estimated level;
    its full-integer int8 is calibrated on crops of its training scenes. `int8_from`,
    a (model path, run state) pair of a quantization-aware fine-tuning of this model,
    is where the int8 variants are converted from instead.

    Raises
    ------
    DenoiserError
        When a real-photo run's model takes no level map or its run held out no
        scenes, or `int8_from` is not a fine-tuning of this model.
    """
    models_dir = Path(models_dir)
    models_dir.mkdir(parents=True, exist_ok=True)
    # A run trained in mixed precision computes in float32 once published.
    model = float32_copy(load_keras_model(model_path))
    config = run_state["config"]
    if pairs_dir:
        yardstick = _real_pairs(model, model_path, run_state, pairs_dir, crop, tile, progress)
    else:
        yardstick = _added_noise(model, run_state, eval_sets, sigmas, limit, train_dir or config["train_dir"], tile,
                                 progress)
    int8_model, int8_extra = _int8_source(model, model_path, int8_from)
    radius, multiple = receptive_radius(model), input_multiple(model)
    common = dict(architecture=config["arch"], channels=model.output_shape[-1], sigma_range=list(yardstick.sigma_range),
                  parameters=int(model.count_params()), receptive_radius=radius,
                  training=training_facts(run_state, yardstick.data))
    keras_path = models_dir / f"{name}.keras"
    model.save(keras_path)
    fields, speed = yardstick.measure(KerasRuntime(model, name=name, **tiling(config["arch"], "keras")))
    float_entry = _entry(keras_path, title=f"{title} (Keras float32)", runtime="keras", precision="float32",
                         fields={**fields, **yardstick.flags}, cpu_mp_s=speed, common=common)
    variants = {}
    for variant in ("float16", *yardstick.int8_kinds):
        source = model if variant == "float16" else int8_model
        path, output = export_file(source, models_dir / f"{name}_{variant}.tflite", variant, tile=tile, batch=batch,
                                   representative=yardstick.representative)
        runtime = LiteRTRuntime(path, output=output, name=f"{name}_{variant}", multiple=multiple,
                                **tiling(config["arch"], "litert", radius=radius))
        fields, speed = yardstick.measure(runtime)
        fields = {"output": output, **fields, **yardstick.flags, **({"input_multiple": multiple} if multiple > 1 else {})}
        variants[variant] = (path, fields, speed)
    return _ship_variants(name, title, variants, float_entry, int8_extra, common, models_dir, yardstick.default_key)


def _added_noise(model, run_state, eval_sets, sigmas, limit, train_dir, tile, progress):
    """The yardstick of a run on added noise (Gaussian, or a mix of types)."""
    if not eval_sets:
        raise DenoiserError("name the evaluation sets with --eval, or the real pairs of a real-photo run with --pairs")
    config = run_state["config"]
    channels = model.output_shape[-1]
    # Before the long measurements, so that a problem with the training images shows at once.
    representative = conversion_samples(train_dir, channels=channels, sigma_range=config["sigma_range"], tile=tile)
    noises = config.get("noise", ())
    return Yardstick(
        measure=lambda runtime: measure(runtime, channels, eval_sets, sigmas, limit, progress, noises),
        data=f"{Path(config['train_dir']).name}, {len(run_state.get('validation_files', []))} images held out",
        sigma_range=tuple(config["sigma_range"]), int8_kinds=("int8_dynamic", "int8_full"),
        default_key=_default_key(config), representative=representative,
        # Compare and Noise analysis show a baseline as one (`catalog.short_title`).
        flags={"baseline": True} if get_architecture(config["arch"]).baseline else {},
    )


REAL_LEVEL_RANGE = (0.0, 25.0)  # the levels of the training patches: about 1 to 22, real scenes 3 to 8


def _real_pairs(model, model_path, run_state, pairs_dir, crop, tile, progress):
    """The yardstick of a real-photo run: its held-out scenes of `pairs_dir`."""
    if model.input_shape[-1] != model.output_shape[-1] + 1:
        raise DenoiserError(f"{model_path} takes no noise-level map: it is not a real-photo model")
    scenes = run_state.get("validation_scenes")
    if not scenes:
        raise DenoiserError("the run held out no real scenes to measure on")
    config = run_state["config"]
    return Yardstick(
        measure=lambda runtime: measure_real(runtime, pairs_dir, scenes, crop, progress),
        data=(f"camera noise on {Path(config['train_dir']).name}, and {len(run_state['train_scenes'])} real "
              f"scenes of {Path(config['pairs_dir']).name} ({len(scenes)} held out)"),
        sigma_range=REAL_LEVEL_RANGE, int8_kinds=("int8_dynamic", "int8_full"), default_key="default_real_photo",
        representative=real_conversion_samples(pairs_dir, run_state.get("train_scenes", ()), tile=tile),
        flags={"level_map": True},
    )


def measure_real(runtime, pairs_dir, scenes, crop, progress):
    """(the entry's fields: real-pair quality on the held-out scenes at the estimated
    level, and an empty `quality`; CPU speed)."""
    row = evaluate_pairs({runtime.name: runtime}, pairs_dir, scenes=scenes, crop=crop)[0]
    real_quality = {Path(pairs_dir).name: {
        "scenes": list(scenes), "crop": crop, "images": row.images, "psnr": round(row.psnr, 3),
        "ssim": round(row.ssim, 4),
        "psnr_noisy": round(row.psnr_noisy, 3), "mean_level": round(row.level, 2),
    }}
    progress(f"{runtime.name} on {row.images} held-out real scenes: {row.psnr:.2f} dB (noisy {row.psnr_noisy:.2f})")
    return {"quality": {}, "real_quality": real_quality}, _speed(runtime, progress)


def _int8_source(model, model_path, int8_from):
    """(the model the int8 variants are converted from, what the manifest says of it)."""
    if int8_from is None:
        return model, {}
    int8_model = load_keras_model(int8_from[0])
    if (int8_model.input_shape[-1] != model.input_shape[-1]
            or receptive_radius(int8_model) != receptive_radius(model)):
        raise DenoiserError(f"{int8_from[0]} is not a fine-tuning of {model_path}: its shape differs")
    return int8_model, {"quantization_aware": _fine_tuning(int8_from[1])}


def _ship_variants(name, title, variants, float_entry, int8_extra, common, models_dir, default_key):
    """Keeps the float16 variant and the better int8 one under their shipped names, removes
    the other, and writes the manifest and the quantization report; returns the new entries."""
    int8_kind = _better_int8(variants, float_entry)
    shipped = {"float16": f"{name}_fp16", int8_kind: f"{name}_int8"}
    quantization = _quantization_rows(float_entry, variants, shipped, aware=bool(int8_extra))
    entries = {name: float_entry}
    for variant, (path, fields, speed) in variants.items():
        if variant not in shipped:
            path.unlink()
            continue
        final = path.with_name(f"{shipped[variant]}.tflite")
        path.rename(final)
        entries[shipped[variant]] = _entry(
            final, title=f"{title} (LiteRT {PRECISION[variant]})", runtime="litert", precision=PRECISION[variant],
            fields={**fields, **(int8_extra if variant != "float16" else {})}, cpu_mp_s=speed, common=common,
        )
    _update_manifest(models_dir, name, entries, quantization, default_key=default_key)
    return entries


def _better_int8(variants, float_entry):
    """The int8 kind that loses at most 0.15 dB, the faster of those; else the more accurate."""
    reference = headline_psnr(float_entry)
    candidates = {kind: variants[kind] for kind in ("int8_dynamic", "int8_full") if kind in variants}
    close = [kind for kind, (_, fields, _) in candidates.items() if reference - headline_psnr(fields) <= 0.15]
    if close:
        return max(close, key=lambda kind: candidates[kind][2])
    return max(candidates, key=lambda kind: headline_psnr(candidates[kind][1]))


def _quantization_rows(float_entry, variants, shipped, *, aware=False):
    rows = [{"variant": "Keras float32", "psnr": headline_psnr(float_entry), "mp_s": float_entry["cpu_mp_s"],
             "shipped": True}]
    for variant, (_, fields, speed) in variants.items():
        label = PRECISION[variant] + (", quantization-aware" if aware and variant != "float16" else "")
        rows.append({"variant": label, "psnr": headline_psnr(fields), "mp_s": speed, "shipped": variant in shipped})
    return rows


def render_quantization_report(manifest):
    """`models/QUANTIZATION.md`: each published model's variants, their quality and speed."""
    lines = [
        "# Quantization: what each variant costs and gains",
        "",
        "Written by `python -m denoiser publish`. Mean PSNR over the first evaluation set",
        "and its sigmas (protocol of the project README); throughput of the tiled",
        f"pipeline on a {THROUGHPUT_SIDE}x{THROUGHPUT_SIDE} image on the CPU that published it.",
    ]
    for name, rows in manifest.get("quantization", {}).items():
        reference = rows[0]
        lines += ["", f"## {name}", "", "| variant | mean PSNR (dB) | change (dB) | MP/s | speed-up | shipped |",
                  "|---|---|---|---|---|---|"]
        for row in rows:
            lines.append(
                f"| {row['variant']} | {row['psnr']:.3f} | {row['psnr'] - reference['psnr']:+.3f} | {row['mp_s']:.3f} "
                f"| {row['mp_s'] / reference['mp_s']:.2f}x | {'yes' if row['shipped'] else 'no'} |"
            )
    return "\n".join(lines) + "\n"


def _default_key(config):
    """The manifest default a published run may become: none for a baseline, the
    mixed-noise one for a run on a mix of noise types (`catalog.NOISE_DEFAULT_KEYS`)."""
    if get_architecture(config["arch"]).baseline:
        return None
    return "default" if tuple(config.get("noise", GAUSSIAN_ONLY)) == GAUSSIAN_ONLY else MIXED_DEFAULT_KEY


def _update_manifest(models_dir, name, entries, quantization, default_key="default"):
    path = Path(models_dir) / MANIFEST
    manifest = json.loads(path.read_text()) if path.exists() else {"models": {}}
    manifest["models"].update(entries)
    manifest.setdefault("quantization", {})[name] = quantization
    # The app's default (for Gaussian demos, or with `default_real_photo` for photos that
    # are already noisy): the first published model's fast variant, which runs without
    # TensorFlow and so fits the memory of a small cloud host.
    if default_key:
        manifest.setdefault(default_key, f"{name}_int8" if f"{name}_int8" in entries else name)
    path.write_text(json.dumps(manifest, indent=2) + "\n")
    (Path(models_dir) / "QUANTIZATION.md").write_text(render_quantization_report(manifest))
