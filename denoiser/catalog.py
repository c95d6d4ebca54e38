"""The shipped models: `models/manifest.json` describes every file in `models/`,
and `load_runtime` turns a name or a path into a runtime."""

import json
import os
from pathlib import Path
from typing import Any, TypedDict

from .classical import CLASSICAL, TITLES
from .errors import DenoiserError
from .runtimes import ClassicalRuntime, KerasRuntime, LiteRTRuntime, Runtime, native_logs_hidden

MODELS_DIR = Path(__file__).resolve().parent.parent / "models"
MANIFEST = "manifest.json"
DEFAULT_LITERT_MARGIN = 24


def _manifest_file(models_dir):
    path = Path(models_dir) / MANIFEST
    if not path.exists():
        return {"models": {}}
    try:
        manifest = json.loads(path.read_text())
        manifest["models"]
    except (ValueError, KeyError, TypeError) as exc:
        raise DenoiserError(f"{path}: not a valid model manifest ({exc})") from None
    return manifest


def read_manifest(models_dir: str | os.PathLike = MODELS_DIR) -> dict[str, dict]:
    """Model name -> manifest entry."""
    return _manifest_file(models_dir)["models"]


def available_models(models_dir: str | os.PathLike = MODELS_DIR, *, real_photo: bool = False) -> list[str]:
    """Names a user can pick: the manifest's default first (its `default_real_photo`
    with `real_photo`, for photos that are already noisy), the other shipped models
    whose files exist, then the classical filters."""
    manifest = _manifest_file(models_dir)
    shipped = [name for name, entry in manifest["models"].items() if (Path(models_dir) / entry["file"]).exists()]
    default = manifest.get("default_real_photo" if real_photo else "default")
    if default in shipped:
        shipped.remove(default)
        shipped.insert(0, default)
    return shipped + sorted(CLASSICAL)


# The manifest key that names the model the demo opens with for each noise type: the
# real-photo model for camera noise, the model trained on a mix of the added noises for
# impulses, and the Gaussian model for the rest, where it scores higher than the mixed
# one (README, "Every noise has a model"). `publish` writes each key for the first model
# of its kind.
NOISE_DEFAULT_KEYS = {"gaussian": "default", "poisson": "default", "speckle": "default",
                      "camera": "default_real_photo"}
MIXED_DEFAULT_KEY = "default_mixed"


def model_for_noise(kind: str, models_dir: str | os.PathLike = MODELS_DIR) -> str:
    """The model the demo picks for noise of `kind` (see NOISE_DEFAULT_KEYS); the
    manifest's default where that model is not installed."""
    manifest = _manifest_file(models_dir)
    shipped = available_models(models_dir)
    name = manifest.get(NOISE_DEFAULT_KEYS.get(kind, MIXED_DEFAULT_KEY))
    return name if name in shipped else shipped[0]


# What comparisons run first: fast, and one of each kind (two networks, the baseline of
# the source articles where it is installed, and a classical filter), for noise added
# to a clean image or for camera noise. Others are on demand.
COMPARISON_DEFAULT = {False: ("dncnn_color_int8", "ridnet_color_int8", "autoencoder_color_int8", "nlm"),
                      True: ("dncnn_real_int8", "unet_real_int8", "nlm")}
ARCHITECTURE_TITLES = {"dncnn": "DnCNN", "ridnet": "RIDNet", "unet": "U-Net", "autoencoder": "Baseline AE"}
PRECISION_TITLES = {"float32": "Keras", "float16": "fp16", "int8 dynamic range": "int8", "int8 full integer": "int8"}


def comparison_default(models_dir: str | os.PathLike = MODELS_DIR, *, real_photo: bool = False) -> list[str]:
    """The models that comparisons open with: COMPARISON_DEFAULT, those available;
    `real_photo` for camera noise."""
    names = available_models(models_dir, real_photo=real_photo)
    return [name for name in COMPARISON_DEFAULT[real_photo] if name in names]


def model_title(name: str, manifest: dict[str, dict]) -> str:
    """The name a person reads: the manifest entry's title, or the classical filter's."""
    entry = manifest.get(name)
    return entry.get("title", name) if entry else TITLES.get(name, name)


def short_title(name: str, manifest: dict[str, dict]) -> str:
    """A title short enough for a chip, a legend or a caption on a phone, and still
    distinct between variants: "DnCNN real · int8", "Median filter"."""
    entry = manifest.get(name)
    if entry is None:
        return TITLES.get(name, name).removesuffix(" (classical)")
    kind = ("" if entry.get("baseline") else "real" if entry.get("level_map") else "gray" if entry.get("channels") == 1
            else "mixed" if entry.get("training", {}).get("noise") else "colour")
    architecture, precision = entry.get("architecture", name), entry.get("precision", "")
    title = " ".join(filter(None, (ARCHITECTURE_TITLES.get(architecture, architecture), kind)))
    return f"{title} · {PRECISION_TITLES.get(precision, precision)}"


def model_summary(name: str, manifest: dict[str, dict]) -> dict[str, str]:
    """A model in plain words, for a person choosing one: its short title, what it is
    for, and its headline quality from the manifest (measured where it was published)."""
    entry = manifest.get(name)
    if entry is None:
        return {"model": short_title(name, manifest), "for": "any noise; no training", "quality": "—"}
    purpose = ("photos that are already noisy" if entry.get("level_map")
               else f"{'gray' if entry.get('channels') == 1 else 'colour'} images with added "
                    + ("noise of any of the demo's types" if entry.get("training", {}).get("noise") else "Gaussian noise"))
    if entry.get("baseline"):
        purpose = "a baseline to compare against: the source articles' autoencoder"
    quality = "—"
    for folder, scores in entry.get("real_quality", {}).items():
        quality = f"{scores['psnr']:.2f} dB from {scores['psnr_noisy']:.2f} on {scores['images']} held-out photos"
    for dataset, scores in entry.get("quality", {}).items():
        sigma, score = next(iter(scores.items())) if "25" not in scores else ("25", scores["25"])
        quality = f"{score['psnr']:.2f} dB on {dataset} at sigma {sigma}"
    return {"model": short_title(name, manifest), "for": purpose, "quality": quality}


def model_card(name: str, manifest: dict[str, dict]) -> list[str]:
    """What a person may want to know of a model, one fact a line: the one formatter for
    the app's model card and `python -m denoiser models`."""
    entry = manifest.get(name)
    if entry is None:
        return ["Classical filter: no training, runs on the CPU. Its strength follows the noise level."]
    low, high = entry.get("sigma_range", ["?", "?"])
    lines = [
        f"{entry.get('architecture', '?')}, {entry.get('channels', '?')} channel(s), "
        f"{entry.get('runtime', '?')} {entry.get('precision', '')}",
        f"{entry.get('parameters', 0):,} parameters, {entry.get('file_mb', 0):.1f} MB, sigma {low}–{high}",
    ]
    for dataset, scores in entry.get("quality", {}).items():
        lines.append(f"{dataset} PSNR at sigma {' / '.join(scores)}: "
                     + " / ".join(f"{score['psnr']:.2f}" for score in scores.values()) + " dB")
    for folder, scores in entry.get("real_quality", {}).items():
        lines.append(f"Real photos ({scores['images']} held-out scenes of {folder}): {scores['psnr']:.2f} dB, "
                     f"from {scores['psnr_noisy']:.2f} dB noisy")
    if entry.get("level_map"):
        lines.append("Takes a strength: the noise level to remove, estimated from the photo by default")
    training = entry.get("training")
    if training:
        start = f", starting from {training['initialised_from']}" if "initialised_from" in training else ""
        where = f" on {training['device']}" if "device" in training else ""
        lines.append(f"Trained on {training['data']}: {training['steps']:,} steps, {training['train_hours']} h{where}{start}")
    aware = entry.get("quantization_aware")
    if aware:
        lines.append(f"Then fine-tuned for int8 with its rounding in the loop: {aware['patches_seen']:,} patches, "
                     f"{aware['train_hours']} h")
    if "cpu_mp_s" in entry:
        lines.append(f"CPU: {entry['cpu_mp_s']:.2f} MP/s where it was published")
    return lines


def model_for_channels(name: str, channels: int, models_dir: str | os.PathLike = MODELS_DIR) -> str:
    """The shipped model to run instead of `name` on an image with `channels` channels.

    A colour model sees a gray image as three equal channels that carry the same
    noise, which it never met in training, and leaves that noise almost untouched.
    A gray image therefore goes to the gray model of the same architecture and
    precision, where one is shipped; otherwise, and for every other case, `name`.
    """
    manifest = read_manifest(models_dir)
    entry = manifest.get(name)
    if entry is None or channels != 1 or entry.get("channels") != 3:
        return name
    for other, candidate in manifest.items():
        if (candidate.get("channels") == 1 and (Path(models_dir) / candidate["file"]).exists()
                and all(candidate.get(key) == entry.get(key) for key in ("architecture", "runtime", "precision"))):
            return other
    return name


def load_keras_model(path: str | os.PathLike) -> Any:
    """The Keras model in the .keras file `path`, with the project's layers registered.

    Raises
    ------
    DenoiserError
        For a file that Keras cannot load.
    """
    # Imported here: Keras brings TensorFlow, some 600 MB that LiteRT models never need.
    with native_logs_hidden():
        import keras

    from .architectures import layers, quantized  # noqa: F401  registers the saved layers for loading

    try:
        return keras.models.load_model(path, compile=False)
    except (ValueError, OSError) as exc:
        raise DenoiserError(f"{path}: not a loadable Keras model ({exc})") from None


class Tiling(TypedDict, total=False):
    """The engine's defaults for a runtime: tile side, tiles a call, tile margin."""

    tile: int
    batch: int
    margin: int


# How the engine tiles a shipped model, by measurement (README, "Speed and memory at
# photo sizes"): tiles large enough that margins cost little, small enough that memory
# stays bounded at photo sizes. A LiteRT DnCNN holds about 1.3 KB a pixel of its tile
# (the app's 12 MP photo peaked at 1,178 MB on tiles of 529, 822 MB on tiles of 364);
# a Keras DnCNN runs fastest on tiles of 1024. RIDNet's margin is below its receptive
# radius of 50: its channel attention pools over each tile, so no margin makes its
# tiles exact, and margins of 16 to 50 gave the same PSNR within 0.002 dB.
TILING: dict[tuple[str, str], Tiling] = {
    ("dncnn", "keras"): {"tile": 1024, "batch": 1},
    ("dncnn", "litert"): {"tile": 364, "batch": 1},
    ("ridnet", "keras"): {"tile": 544, "batch": 1, "margin": 16},
    ("ridnet", "litert"): {"tile": 544, "batch": 1, "margin": 16},
    ("unet", "keras"): {"tile": 1024, "batch": 1, "margin": 32},
    ("unet", "litert"): {"tile": 768, "batch": 1, "margin": 32},
    # The autoencoder's margin is its whole receptive radius (8), so its tiles are exact.
    ("autoencoder", "keras"): {"tile": 512, "batch": 1},
    ("autoencoder", "litert"): {"tile": 512, "batch": 1},
}


def tiling(architecture: str, kind: str, *, radius: int | None = None) -> Tiling:
    """The runtime options (tile, batch, margin) of a shipped `architecture` run by `kind`
    ("keras" or "litert"); the margin defaults to `radius`, where one is given (a Keras
    model reads its own from its layers)."""
    options = Tiling(**TILING.get((architecture, kind), {}))
    if radius is not None:
        options.setdefault("margin", radius)
    return options


def load_runtime(spec: str | os.PathLike, *, models_dir: str | os.PathLike = MODELS_DIR,
                 threads: int | None = None) -> Runtime:
    """A runtime for a manifest name ('dncnn_color'), a classical filter ('nlm'),
    or a path to a .keras or .tflite file. `threads` holds a LiteRT model to that many
    threads (default: every core); for the others, see `batch.hold_to_threads`."""
    if spec in CLASSICAL:
        return ClassicalRuntime(spec, channels=None)
    manifest = read_manifest(models_dir)
    entry = manifest.get(str(spec))
    path = Path(models_dir) / entry["file"] if entry else Path(spec)
    if not path.exists():
        known = ", ".join(available_models(models_dir)) or "none"
        raise DenoiserError(f"unknown model {spec!r}: not a file, and not one of: {known}")
    name = str(spec) if entry else path.stem
    if path.suffix == ".tflite":
        options = (tiling(entry["architecture"], "litert", radius=entry["receptive_radius"]) if entry
                   else Tiling(margin=DEFAULT_LITERT_MARGIN))
        output = entry.get("output", "noise") if entry else "noise"
        multiple = int(entry.get("input_multiple", 1)) if entry else 1
        return LiteRTRuntime(path, output=output, name=name, multiple=multiple,
                             threads=threads or 0, **options)
    if path.suffix == ".keras":
        options = tiling(entry["architecture"], "keras") if entry else Tiling()
        return KerasRuntime(load_keras_model(path), name=name, **options)
    raise DenoiserError(f"{path}: expected a .keras or .tflite model")
