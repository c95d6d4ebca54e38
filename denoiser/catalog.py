"""The shipped models: `models/manifest.json` describes every file in `models/`,
and `load_runtime` turns a name or a path into a runtime."""

import hashlib
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


# What a model is for, as publish writes it into the manifest entry's `purpose`.
PURPOSES = ("gaussian", "mixed_noise", "real_photo", "baseline")
# Each variant of a family as publish writes it into `variant`, and the slot it fills:
# both int8 kinds fill the one int8 slot (a family ships one of them).
VARIANTS = {"float32": "float32", "float16": "float16", "int8 dynamic range": "int8", "int8 full integer": "int8"}
# Variants of one family this close in headline PSNR are one model to a person: publish
# ships the faster int8 kind when it is within this of the float model.
SAME_QUALITY_DB = 0.15
# The purpose whose model the demo opens with for each noise type, and why: the Gaussian
# model removes Poisson and speckle noise better than the mixed-noise one
# (docs/noise.md), which the other types (impulses) need.
NOISE_PURPOSES = {
    "gaussian": ("gaussian", "the Gaussian model, trained on exactly this noise"),
    "poisson": ("gaussian", "the Gaussian model, which removes it better than the mixed-noise model"),
    "speckle": ("gaussian", "the Gaussian model, which removes it better than the mixed-noise model"),
    "camera": ("real_photo", "the real-photo model, trained on camera noise"),
}
OTHER_NOISE = ("mixed_noise", "the model trained on a mix of the demo's noises, impulses included")


class ModelEntry(TypedDict, total=False):
    """A manifest entry as `publish` writes it: what the model is (family, purpose,
    variant, channels, gray counterpart), its file, and what was measured of it."""

    file: str
    title: str
    family: str
    purpose: str
    variant: str
    architecture: str
    runtime: str
    channels: int
    gray_counterpart: str | None
    level_map: bool
    sigma_range: list[float]
    parameters: int
    receptive_radius: int
    file_mb: float
    sha256: str
    output: str
    input_multiple: int
    quality: dict
    real_quality: dict
    noise_quality: dict
    training: dict
    quantization_aware: dict
    cpu_mp_s: float


def _manifest_file(models_dir):
    path = Path(models_dir) / MANIFEST
    if not path.exists():
        return {"models": {}}
    try:
        manifest = json.loads(path.read_text())
        manifest["models"].items()
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise DenoiserError(f"{path}: not a valid model manifest ({exc})") from None
    return manifest


def file_sha256(path: str | os.PathLike) -> str:
    """The hex SHA-256 of the file at `path`, as the manifest records it."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _entry_file(name, entry, models_dir):
    """The file of manifest entry `name`, checked: one plain name inside `models_dir`
    (never an absolute path or `..`), present, and the bytes the manifest's sha256 says
    (a file replaced or damaged after `publish` is not what its scores describe)."""
    file = entry.get("file") if isinstance(entry, dict) else None
    if not isinstance(file, str) or not file or Path(file).name != file or file in (".", ".."):
        raise DenoiserError(f"the manifest entry of {name} names no file inside {models_dir} ({file!r})")
    path = Path(models_dir) / file
    if path.is_file() and entry.get("sha256") and file_sha256(path) != entry["sha256"]:
        raise DenoiserError(f"{path} is not the file {name} was published with (its sha256 differs): publish it "
                            "again, or restore the file")
    return path


def read_manifest(models_dir: str | os.PathLike = MODELS_DIR) -> dict[str, ModelEntry]:
    """Model name -> manifest entry."""
    return _manifest_file(models_dir)["models"]


def _shipped(models_dir, manifest=None) -> list[str]:
    """The manifest's models whose files exist, in manifest order; `manifest` (the
    file's contents, read already) saves reading it again."""
    entries = (manifest or _manifest_file(models_dir))["models"]
    return [name for name, entry in entries.items() if (Path(models_dir) / entry["file"]).exists()]


def _installed_default(manifest, shipped, key) -> dict:
    """The manifest's `defaults` entry for `key` ({model, why}) where its model is in
    `shipped`; else an empty one."""
    chosen = manifest.get("defaults", {}).get(key, {})
    return chosen if chosen.get("model") in shipped else {}


# The few choices the app offers for a photo that is already noisy, named by what they
# are for, each a key of the manifest's `defaults` (with its model and its reason); the
# classical filter is the fourth. Every other model is under "All models".
PHOTO_CHOICES = {"Photo (recommended)": "real_photo", "Fast": "real_photo_fast", "Best quality": "real_photo_best"}
CLASSICAL_CHOICE = ("Classical filter", "nlm")


def default_for(purpose: str, models_dir: str | os.PathLike = MODELS_DIR) -> str:
    """The model that the app, `denoise` without `--model`, `models`, Compare and Noise
    analysis open with for `purpose` (one of PURPOSES, or a choice of PHOTO_CHOICES):
    the manifest's `defaults` entry when its file is installed, else the first
    installed model of that purpose, else the first installed model, else the first
    classical filter."""
    manifest = _manifest_file(models_dir)
    shipped = _shipped(models_dir, manifest)
    chosen = _installed_default(manifest, shipped, purpose).get("model")
    if chosen:
        return chosen
    of_purpose = [name for name in shipped if manifest["models"][name].get("purpose") == purpose]
    return (of_purpose or shipped or sorted(CLASSICAL))[0]


def default_reason(purpose: str, models_dir: str | os.PathLike = MODELS_DIR) -> str | None:
    """Why `default_for(purpose)` is the default, in the manifest's words; None where the
    manifest's default is not installed (another model stands in, for no stated reason)."""
    manifest = _manifest_file(models_dir)
    return _installed_default(manifest, _shipped(models_dir, manifest), purpose).get("why")


def available_models(models_dir: str | os.PathLike = MODELS_DIR, *, purpose: str = "gaussian") -> list[str]:
    """Names a user can pick: the default for `purpose` first, the other shipped models
    whose files exist, then the classical filters."""
    first = default_for(purpose, models_dir)
    return [first, *(name for name in _shipped(models_dir) + sorted(CLASSICAL) if name != first)]


def photo_choices(models_dir: str | os.PathLike = MODELS_DIR) -> dict[str, str]:
    """{label: model} of PHOTO_CHOICES whose manifest default is installed, then the
    classical filter: the short list for a photo that is already noisy."""
    manifest = _manifest_file(models_dir)
    shipped = _shipped(models_dir, manifest)
    choices = {label: _installed_default(manifest, shipped, key).get("model") for label, key in PHOTO_CHOICES.items()}
    return {**{label: name for label, name in choices.items() if name}, CLASSICAL_CHOICE[0]: CLASSICAL_CHOICE[1]}


def fast_photo_model(models_dir: str | os.PathLike = MODELS_DIR) -> str | None:
    """The "Fast" choice of PHOTO_CHOICES where it is installed: what a photo's fast
    preview runs before a slower model."""
    manifest = _manifest_file(models_dir)
    return _installed_default(manifest, _shipped(models_dir, manifest), "real_photo_fast").get("model")


def model_for_noise(kind: str, models_dir: str | os.PathLike = MODELS_DIR) -> tuple[str, str]:
    """(the model the demo picks for added noise of `kind`, why), by NOISE_PURPOSES."""
    purpose, why = NOISE_PURPOSES.get(kind, OTHER_NOISE)
    return default_for(purpose, models_dir), why


def variants(family: str, models_dir: str | os.PathLike = MODELS_DIR) -> list[str]:
    """The installed models of `family`, in manifest order."""
    manifest = _manifest_file(models_dir)
    return [name for name in _shipped(models_dir, manifest) if manifest["models"][name].get("family") == family]


def counterpart(name: str, channels: int, models_dir: str | os.PathLike = MODELS_DIR) -> str:
    """The model to run instead of `name` on an image of `channels` channels.

    A Gaussian colour model sees a gray image as three equal channels that carry the
    same noise, which it never met in training, and leaves that noise almost
    untouched; so its manifest entry names a gray counterpart of the same variant
    slot, which a gray image goes to where it is installed. Every other model keeps
    itself: the real-photo DnCNN on three equal channels removes gray camera noise
    better than any gray model (docs/real-photos.md).
    """
    manifest = _manifest_file(models_dir)
    entry = manifest["models"].get(name)
    other = entry.get("gray_counterpart") if entry and channels == 1 else None
    return other if other in _shipped(models_dir, manifest) else name


def comparison_default(models_dir: str | os.PathLike = MODELS_DIR, *, real_photo: bool = False) -> list[str]:
    """The models that comparisons open with, from the manifest's `comparisons`: fast,
    one of each kind (networks, the source articles' baseline, a classical filter); for
    camera noise with `real_photo`. Those not installed are left out."""
    manifest = _manifest_file(models_dir)
    listed = manifest.get("comparisons", {}).get("real_photo" if real_photo else "added_noise", [])
    installed = set(_shipped(models_dir, manifest)) | set(CLASSICAL)
    return [name for name in listed if name in installed]


ARCHITECTURE_TITLES = {"dncnn": "DnCNN", "ridnet": "RIDNet", "unet": "U-Net", "autoencoder": "Baseline AE"}
VARIANT_TITLES = {"float32": "Keras", "float16": "fp16", "int8": "int8"}
PURPOSE_TITLES = {"real_photo": "real", "mixed_noise": "mixed", "baseline": ""}


def model_title(name: str, manifest: dict[str, ModelEntry]) -> str:
    """The name a person reads: the manifest entry's title, or the classical filter's."""
    entry = manifest.get(name)
    return entry.get("title", name) if entry else TITLES.get(name, name)


def short_title(name: str, manifest: dict[str, ModelEntry]) -> str:
    """A title short enough for a chip, a legend or a caption on a phone, and still
    distinct between variants: "DnCNN real · int8", "Median filter"."""
    entry = manifest.get(name)
    if entry is None:
        return TITLES.get(name, name).removesuffix(" (classical)")
    purpose = entry.get("purpose", "")
    kind = PURPOSE_TITLES.get(purpose, "gray" if entry.get("channels") == 1 else "colour")
    architecture = entry.get("architecture", name)
    title = " ".join(filter(None, (ARCHITECTURE_TITLES.get(architecture, architecture), kind)))
    slot = VARIANTS.get(entry.get("variant", ""), "")
    return f"{title} · {VARIANT_TITLES.get(slot, slot)}"


# What each purpose is for, in a person's words.
PURPOSE_WORDS = {
    "gaussian": "images with added Gaussian noise",
    "mixed_noise": "images with added noise of any of the demo's types",
    "real_photo": "photos that are already noisy",
    "baseline": "a baseline to compare against: the source articles' autoencoder",
}


def headline_psnr(entry: ModelEntry) -> float | None:
    """A manifest entry's one quality number: its real-pair PSNR, else the mean over the
    levels of its first evaluation set; None when it records neither."""
    for scores in entry.get("real_quality", {}).values():
        return scores["psnr"]
    for scores in entry.get("quality", {}).values():
        return sum(score["psnr"] for score in scores.values()) / len(scores)
    return None


def _quality(entry: ModelEntry) -> str:
    for folder, scores in entry.get("real_quality", {}).items():
        return f"{scores['psnr']:.2f} dB from {scores['psnr_noisy']:.2f} on {scores['images']} held-out photos"
    for dataset, scores in entry.get("quality", {}).items():
        sigma, score = ("25", scores["25"]) if "25" in scores else next(iter(scores.items()))
        return f"{score['psnr']:.2f} dB on {dataset} at sigma {sigma}"
    return "—"


def model_summary(name: str, manifest: dict[str, ModelEntry]) -> dict[str, str]:
    """A model in plain words, for a person choosing one: its short title, what it is
    for, and its headline quality from the manifest (measured where it was published)."""
    entry = manifest.get(name)
    if entry is None:
        return {"model": short_title(name, manifest), "for": "any noise; no training", "quality": "—"}
    purpose = PURPOSE_WORDS.get(entry.get("purpose", ""), "—") + (" (gray)" if entry.get("channels") == 1 else "")
    return {"model": short_title(name, manifest), "for": purpose, "quality": _quality(entry)}


def model_table(models_dir: str | os.PathLike = MODELS_DIR) -> str:
    """The Markdown table of every model in the manifest (docs/models.md, from
    `denoiser models --markdown`): what it is for, its variant, its headline quality
    and its speed where it was published, and which default it is and why."""
    whole = _manifest_file(models_dir)
    manifest, defaults = whole["models"], whole.get("defaults", {})
    default_of = {chosen["model"]: (purpose, chosen.get("why", "")) for purpose, chosen in defaults.items()}
    lines = ["# The models", "", "Generated from `models/manifest.json` by `denoiser models --markdown`; "
             "speeds are those of the machine that published each model.", "",
             "| model | for | variant | quality | MP/s where published | default |", "|---|---|---|---|---|---|"]
    labels = {key: label for label, key in PHOTO_CHOICES.items()}
    for name, entry in manifest.items():
        purpose, why = default_of.get(name, (None, ""))
        mark = (f"for {PURPOSE_WORDS[purpose]}: {why}" if purpose in PURPOSE_WORDS
                else f"the app's “{labels.get(purpose, purpose)}” for photos: {why}" if purpose else "")
        lines.append(f"| `{name}` | {model_summary(name, manifest)['for']} | {entry.get('variant', '—')} | "
                     f"{_quality(entry)} | {entry.get('cpu_mp_s', 0):.3f} | {mark} |")
    return "\n".join(lines) + "\n"


def model_card(name: str, manifest: dict[str, ModelEntry]) -> list[str]:
    """What a person may want to know of a model, one fact a line: the one formatter for
    the app's model card and `python -m denoiser models`. Build details (commits,
    library versions) stay in the manifest."""
    entry = manifest.get(name)
    if entry is None:
        return ["Classical filter: no training, runs on the CPU. Its strength follows the noise level."]
    low, high = entry.get("sigma_range", (0.0, 0.0))
    lines = [f"{short_title(name, manifest)}: {entry.get('parameters', 0):,} parameters, "
             f"{entry.get('file_mb', 0):.1f} MB, noise levels {low:g}–{high:g}"]
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
        lines.append(f"Trained on {training['data']}: {training['steps']:,} steps, {training['train_hours']} h")
    aware = entry.get("quantization_aware")
    if aware:
        lines.append(f"Then fine-tuned for int8 with its rounding in the loop: {aware['patches_seen']:,} patches, "
                     f"{aware['train_hours']} h")
    if "cpu_mp_s" in entry:
        lines.append(f"CPU: {entry['cpu_mp_s']:.2f} MP/s where it was published")
    return lines


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


# How the engine tiles a shipped model, by measurement (docs/speed-and-memory.md):
# tiles large enough that margins cost little, small enough that memory stays bounded
# at photo sizes. A LiteRT DnCNN holds about 1.3 KB a pixel of its tile
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
    path = _entry_file(str(spec), entry, models_dir) if entry else Path(spec)
    if not path.exists():
        known = ", ".join(available_models(models_dir)) or "none"
        raise DenoiserError(f"unknown model {spec!r}: not a file, and not one of: {known}")
    name = str(spec) if entry else path.stem
    # A published model's runtime is what its manifest entry says; a bare file's, its suffix.
    kind = entry.get("runtime") if entry else {".tflite": "litert", ".keras": "keras"}.get(path.suffix)
    if kind == "litert":
        options = (tiling(entry["architecture"], "litert", radius=entry["receptive_radius"]) if entry
                   else Tiling(margin=DEFAULT_LITERT_MARGIN))
        output = entry.get("output", "noise") if entry else "noise"
        multiple = int(entry.get("input_multiple", 1)) if entry else 1
        return LiteRTRuntime(path, output=output, name=name, multiple=multiple,
                             threads=threads or 0, **options)
    if kind == "keras":
        options = tiling(entry["architecture"], "keras") if entry else Tiling()
        return KerasRuntime(load_keras_model(path), name=name, **options)
    raise DenoiserError(f"{path}: expected a .keras or .tflite model")
