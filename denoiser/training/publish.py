"""Publishing a trained model into `models/`: the Keras file, its LiteRT
variants, and a manifest entry each with size, checksum, training facts,
protocol PSNR/SSIM and CPU throughput.

Both int8 kinds are measured; only the one with the better trade of quality
and speed ships; the comparison of all of them goes to `models/QUANTIZATION.md`.
"""

import json
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ..architectures.graph import input_multiple, receptive_radius
from ..bench import tiled_rate
from ..architectures.registry import get_architecture
from ..catalog import MANIFEST, MODELS_DIR, SAME_QUALITY_DB, VARIANTS, headline_psnr, load_keras_model, tiling
from ..catalog import file_sha256, read_manifest
from ..catalog import variants as variants_of
from ..errors import DenoiserError
from ..io import write_atomically
from ..evaluate import EVALUATION_SIGMAS, default_levels, evaluate, evaluate_pairs
from ..runtimes import KerasRuntime, LiteRTRuntime
from .export import EXPORT_BATCH, EXPORT_TILE, conversion_samples, export_file, real_conversion_samples
from .config import GAUSSIAN_ONLY
from .train import float32_copy

# The export kinds (`export.export_file`) as the manifest names their variant (`catalog.VARIANTS`).
VARIANT_OF_EXPORT = {"float16": "float16", "int8_dynamic": "int8 dynamic range", "int8_full": "int8 full integer"}
THROUGHPUT_SIDE = 1024


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


def _entry(path, *, title, runtime, variant, fields, cpu_mp_s, common):
    return {
        "file": path.name, "title": title, **common, "file_mb": round(path.stat().st_size / 1e6, 3),
        "sha256": file_sha256(path), "runtime": runtime, "variant": variant, **fields, "cpu_mp_s": round(cpu_mp_s, 3),
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
    purpose: str
    representative: np.ndarray | None = None
    flags: dict = field(default_factory=dict)


def publish(model_path, name, *, title, run_state, eval_sets=None, sigmas=EVALUATION_SIGMAS, limit=None,
            train_dir=None, pairs_dir=None, crop=None, int8_from=None, gray_counterpart=None, models_dir=MODELS_DIR,
            tile=EXPORT_TILE, batch=EXPORT_BATCH, progress=print):
    """Writes `name`.keras, `name`_fp16.tflite and `name`_int8.tflite with their manifest
    entries, and the quantization report.

    A run on added noise is measured on `eval_sets` ({label: folder}) at `sigmas`, and
    at the demo's level of each other noise type it trained on; both int8 kinds are
    converted (calibrated on `train_dir`, by default the run's) and the better trade
    ships. A real-photo run (`pairs_dir` given) is measured on its held-out scenes of
    `pairs_dir`, on central `crop`-pixel squares (or whole), at the estimated level;
    its full-integer int8 is calibrated on crops of its training scenes. `int8_from`,
    a (model path, run state) pair of a quantization-aware fine-tuning of this model,
    is where the int8 variants are converted from instead. `gray_counterpart`, a
    published family of gray models, is where each variant sends gray images: its
    entry names that family's model of the same variant slot (`catalog.counterpart`).

    Each entry records what the model is: its `family` (`name`), its `purpose` (from
    the run: real photo, baseline, mixed noise or Gaussian), its `variant` and its
    `gray_counterpart`. The first model published for a purpose becomes its default.

    Raises
    ------
    DenoiserError
        When a real-photo run's model takes no level map or its run held out no
        scenes, or `int8_from` is not a fine-tuning of this model.
    """
    models_dir = Path(models_dir)
    check_model_name(name)
    models_dir.mkdir(parents=True, exist_ok=True)
    _check_gray_family(gray_counterpart, models_dir)
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
    common = dict(family=name, purpose=yardstick.purpose, architecture=config["arch"],
                  channels=model.output_shape[-1], sigma_range=list(yardstick.sigma_range),
                  parameters=int(model.count_params()), receptive_radius=radius,
                  training=training_facts(run_state, yardstick.data))
    # Everything is written and measured in a staging folder first, and moved into
    # place with the manifest at the end: a publish that fails while measuring (a bad
    # image in an evaluation set) leaves the published model, its file and its sha256 as
    # they were.
    with tempfile.TemporaryDirectory(prefix=f".publish_{name}_", dir=models_dir) as staging:
        entries, quantization = _write_and_measure(model, name, title, config, yardstick, common, int8_model,
                                                   int8_extra, Path(staging), tile, batch, radius, multiple)
        for entry in entries.values():
            os.replace(Path(staging) / entry["file"], models_dir / entry["file"])
        _update_manifest(models_dir, name, entries, quantization, purpose=yardstick.purpose,
                         gray_counterpart=gray_counterpart)
    return entries


def check_model_name(name):
    """A published model's name is one plain file name: letters, digits, `_` and `-`
    (never a path, so nothing is written outside the models folder)."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}", name or ""):
        raise DenoiserError(f"{name!r} is not a model name: use letters, digits, _ and - (at most 64), no path")


def _write_and_measure(model, name, title, config, yardstick, common, int8_model, int8_extra, folder, tile, batch,
                       radius, multiple):
    """The model's files written in `folder` and measured: (entries, quantization rows)."""
    keras_path = folder / f"{name}.keras"
    model.save(keras_path)
    fields, speed = yardstick.measure(KerasRuntime(model, name=name, **tiling(config["arch"], "keras")))
    float_entry = _entry(keras_path, title=f"{title} (Keras float32)", runtime="keras", variant="float32",
                         fields={**fields, **yardstick.flags}, cpu_mp_s=speed, common=common)
    variants = {}
    for variant in ("float16", *yardstick.int8_kinds):
        source = model if variant == "float16" else int8_model
        path, output = export_file(source, folder / f"{name}_{variant}.tflite", variant, tile=tile, batch=batch,
                                   representative=yardstick.representative)
        runtime = LiteRTRuntime(path, output=output, name=f"{name}_{variant}", multiple=multiple,
                                **tiling(config["arch"], "litert", radius=radius))
        fields, speed = yardstick.measure(runtime)
        fields = {"output": output, **fields, **yardstick.flags, **({"input_multiple": multiple} if multiple > 1 else {})}
        variants[variant] = (path, fields, speed)
    entries = _ship_variants(name, title, variants, float_entry, int8_extra, common)
    return entries, _quantization_rows(float_entry, variants, entries, aware=bool(int8_extra))


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
        purpose=_purpose(config), representative=representative,
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
        sigma_range=REAL_LEVEL_RANGE, int8_kinds=("int8_dynamic", "int8_full"), purpose="real_photo",
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


def _check_gray_family(family, models_dir):
    """A DenoiserError, before any work, unless `family` is None or a published family of gray models."""
    if family is None:
        return
    manifest = read_manifest(models_dir)
    members = variants_of(family, models_dir)
    if not members or any(manifest[name]["channels"] != 1 for name in members):
        raise DenoiserError(f"no published family {family!r} of gray models to send gray images to")


def _int8_source(model, model_path, int8_from):
    """(the model the int8 variants are converted from, what the manifest says of it)."""
    if int8_from is None:
        return model, {}
    int8_model = load_keras_model(int8_from[0])
    if (int8_model.input_shape[-1] != model.input_shape[-1]
            or receptive_radius(int8_model) != receptive_radius(model)):
        raise DenoiserError(f"{int8_from[0]} is not a fine-tuning of {model_path}: its shape differs")
    return int8_model, {"quantization_aware": _fine_tuning(int8_from[1])}


def _ship_variants(name, title, variants, float_entry, int8_extra, common):
    """Keeps the float16 variant and the better int8 one under their shipped names and
    removes the other; returns the entries by shipped name."""
    int8_kind = _better_int8(variants, float_entry)
    shipped = {"float16": f"{name}_fp16", int8_kind: f"{name}_int8"}
    entries = {name: float_entry}
    for variant, (path, fields, speed) in variants.items():
        if variant not in shipped:
            path.unlink()
            continue
        final = path.with_name(f"{shipped[variant]}.tflite")
        path.rename(final)
        entries[shipped[variant]] = _entry(
            final, title=f"{title} (LiteRT {VARIANT_OF_EXPORT[variant]})", runtime="litert",
            variant=VARIANT_OF_EXPORT[variant], fields={**fields, **(int8_extra if variant != "float16" else {})},
            cpu_mp_s=speed, common=common,
        )
    return entries


def _better_int8(variants, float_entry):
    """The int8 kind that loses at most SAME_QUALITY_DB, the faster of those; else the more accurate."""
    reference = headline_psnr(float_entry)
    candidates = {kind: variants[kind] for kind in ("int8_dynamic", "int8_full") if kind in variants}
    close = [kind for kind, (_, fields, _) in candidates.items()
             if reference - headline_psnr(fields) <= SAME_QUALITY_DB]
    if close:
        return max(close, key=lambda kind: candidates[kind][2])
    return max(candidates, key=lambda kind: headline_psnr(candidates[kind][1]))


def _quantization_rows(float_entry, variants, entries, *, aware=False):
    shipped = {entry["file"] for entry in entries.values()}
    rows = [{"variant": "Keras float32", "psnr": headline_psnr(float_entry), "mp_s": float_entry["cpu_mp_s"],
             "shipped": True}]
    for variant, (_, fields, speed) in variants.items():
        label = VARIANT_OF_EXPORT[variant] + (", quantization-aware" if aware and variant != "float16" else "")
        rows.append({"variant": label, "psnr": headline_psnr(fields), "mp_s": speed,
                     "shipped": variants[variant][0].name in shipped})
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


def _purpose(config):
    """What a run on added noise is for: a baseline, mixed noise, or Gaussian noise."""
    if get_architecture(config["arch"]).baseline:
        return "baseline"
    return "gaussian" if tuple(config.get("noise", GAUSSIAN_ONLY)) == GAUSSIAN_ONLY else "mixed_noise"


def _gray_counterparts(entries, manifest, family):
    """Each entry's `gray_counterpart`: the model of `family` in `manifest` that fills the
    same variant slot (`catalog.VARIANTS`), or None."""
    slots = {VARIANTS[entry["variant"]]: other for other, entry in manifest.items() if entry.get("family") == family}
    for entry in entries.values():
        entry["gray_counterpart"] = slots.get(VARIANTS[entry["variant"]]) if family else None


def _update_manifest(models_dir, name, entries, quantization, *, purpose, gray_counterpart=None):
    path = Path(models_dir) / MANIFEST
    manifest = json.loads(path.read_text()) if path.exists() else {"models": {}}
    _gray_counterparts(entries, manifest["models"], gray_counterpart)
    manifest["models"].update(entries)
    manifest.setdefault("quantization", {})[name] = quantization
    # The first model published for a purpose becomes its default, in its int8 variant:
    # it runs without TensorFlow, and so fits the memory of a small cloud host. A
    # baseline is there to be compared against, never a default.
    if purpose != "baseline":
        chosen = f"{name}_int8" if f"{name}_int8" in entries else name
        manifest.setdefault("defaults", {}).setdefault(purpose, {
            "model": chosen, "why": f"the first model published for this purpose, in its {entries[chosen]['variant']} "
                                    "variant"})
    write_atomically(path, (json.dumps(manifest, indent=2) + "\n").encode())
    write_atomically(Path(models_dir) / "QUANTIZATION.md", render_quantization_report(manifest).encode())
