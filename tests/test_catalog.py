"""The catalog answers what a model is from its manifest entry's facts alone, over
manifests in the shape `publish` writes; the docs' model table is the manifest's."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from denoiser import catalog

ROOT = Path(__file__).resolve().parent.parent


def entry(family, purpose, variant, *, channels=3, gray=None, psnr=30.0):
    """A manifest entry as publish writes it (the facts the catalog reads, and a score)."""
    suffix = {"float32": "", "float16": "_fp16"}.get(variant, "_int8")
    return {"file": f"{family}{suffix}.bin", "title": f"{family} ({variant})", "family": family,
            "purpose": purpose, "architecture": "dncnn", "channels": channels, "sigma_range": [0.0, 55.0],
            "runtime": "keras" if variant == "float32" else "litert", "variant": variant,
            "quality": {"SET": {"25": {"psnr": psnr, "ssim": 0.8, "psnr_noisy": 20.0, "images": 3}}},
            "cpu_mp_s": 1.0, "gray_counterpart": gray}


@pytest.fixture
def models(tmp_path):
    """Colour and gray Gaussian families (the colour int8 full integer, the gray one
    dynamic range: they must still pair), a real-photo family, a mixed-noise one, a
    baseline, and one entry whose file is missing."""
    entries = {
        "colour": entry("colour", "gaussian", "float32", gray="gray"),
        "colour_fp16": entry("colour", "gaussian", "float16", gray="gray_fp16"),
        "colour_int8": entry("colour", "gaussian", "int8 full integer", gray="gray_int8"),
        "gray": entry("gray", "gaussian", "float32", channels=1),
        "gray_fp16": entry("gray", "gaussian", "float16", channels=1),
        "gray_int8": entry("gray", "gaussian", "int8 dynamic range", channels=1),
        "real": entry("real", "real_photo", "float32"),
        "real_int8": entry("real", "real_photo", "int8 full integer"),
        "mixed_int8": entry("mixed", "mixed_noise", "int8 dynamic range"),
        "baseline_int8": entry("baseline", "baseline", "int8 full integer"),
        "lost": {**entry("lost", "gaussian", "float32", gray="gray"), "file": "lost.bin"},
    }
    for name, item in entries.items():
        if name != "lost":
            (tmp_path / item["file"]).write_bytes(b"x")
    manifest = {"models": entries,
                "defaults": {"gaussian": {"model": "colour_int8", "why": "fast and as good"},
                             "real_photo": {"model": "real_int8", "why": "made for photos"},
                             "mixed_noise": {"model": "lost", "why": "not installed"}},
                "comparisons": {"added_noise": ["colour_int8", "lost", "baseline_int8", "nlm"],
                                "real_photo": ["real_int8", "median"]}}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    return tmp_path


@pytest.mark.parametrize("purpose, expected, why", [
    ("gaussian", "colour_int8", "fast and as good"),
    ("real_photo", "real_int8", "made for photos"),
    # The manifest's default is not installed: the first installed model of that purpose, no reason.
    ("mixed_noise", "mixed_int8", None),
    ("baseline", "baseline_int8", None),
])
def test_each_purpose_has_one_default_and_its_reason(models, purpose, expected, why):
    assert catalog.default_for(purpose, models) == expected
    assert catalog.default_reason(purpose, models) == why
    assert catalog.available_models(models, purpose=purpose)[0] == expected


def test_an_empty_models_folder_falls_back_to_a_classical_filter(tmp_path):
    assert catalog.default_for("real_photo", tmp_path) == "bilateral"
    assert catalog.available_models(tmp_path) == ["bilateral", "median", "nlm"]


@pytest.mark.parametrize("name, channels, expected", [
    # Every variant slot to the gray family's, whichever int8 kind each ships.
    ("colour", 1, "gray"),
    ("colour_fp16", 1, "gray_fp16"),
    ("colour_int8", 1, "gray_int8"),
    ("colour_int8", 3, "colour_int8"),
    ("gray", 3, "gray"),
    # A real-photo or mixed-noise model keeps itself on a gray image.
    ("real_int8", 1, "real_int8"),
    ("mixed_int8", 1, "mixed_int8"),
    ("median", 1, "median"),
    ("unknown", 1, "unknown"),
])
def test_a_gray_image_goes_to_the_counterpart_the_entry_names(models, name, channels, expected):
    assert catalog.counterpart(name, channels, models) == expected


def test_a_counterpart_that_is_not_installed_is_not_used(models):
    (models / "gray.bin").unlink()
    assert catalog.counterpart("colour", 1, models) == "colour"


@pytest.mark.parametrize("kind, expected", [
    ("gaussian", "colour_int8"), ("poisson", "colour_int8"), ("speckle", "colour_int8"),
    ("camera", "real_int8"), ("salt_and_pepper", "mixed_int8"), ("random_impulse", "mixed_int8"),
])
def test_the_demo_picks_the_default_of_the_purpose_made_for_each_noise(models, kind, expected):
    name, why = catalog.model_for_noise(kind, models)
    assert name == expected and why


def test_variants_and_comparisons_come_from_the_facts(models):
    assert catalog.variants("colour", models) == ["colour", "colour_fp16", "colour_int8"]
    assert catalog.variants("lost", models) == []
    assert catalog.comparison_default(models) == ["colour_int8", "baseline_int8", "nlm"]
    assert catalog.comparison_default(models, real_photo=True) == ["real_int8", "median"]


@pytest.mark.parametrize("name, expected", [
    ("colour", "DnCNN colour · Keras"), ("colour_fp16", "DnCNN colour · fp16"),
    ("gray_int8", "DnCNN gray · int8"), ("real_int8", "DnCNN real · int8"),
    ("mixed_int8", "DnCNN mixed · int8"), ("baseline_int8", "DnCNN · int8"), ("nlm", "Non-local means"),
])
def test_short_titles_come_from_purpose_channels_and_variant(models, name, expected):
    assert catalog.short_title(name, catalog.read_manifest(models)) == expected


def test_no_module_reads_a_models_kind_from_its_name_or_title():
    """Outside the catalog and publish (which writes the facts), nothing parses a
    model's name for its variant or its title for its kind."""
    pattern = ["grep", "-rnE", r"_int8\"\)|_fp16\"\)|endswith\(\"_|removesuffix\(\"_|\"int8 full|\"int8 dynamic|\[.title.\] ==",
               "denoiser", "pages", "app.py", "--include=*.py"]
    found = subprocess.run(pattern, cwd=ROOT, capture_output=True, text=True).stdout.splitlines()
    allowed = ("denoiser/catalog.py", "denoiser/training/publish.py")
    assert [line for line in found if not line.startswith(allowed)] == []


def test_docs_models_is_the_manifests_table():
    shown = subprocess.run([sys.executable, "-m", "denoiser", "models", "--markdown"], cwd=ROOT,
                           capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0, shown.stderr
    assert (ROOT / "docs" / "models.md").read_text() == shown.stdout


def test_the_readme_is_short_and_names_no_removed_function():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 300
    for gone in ("fastest_variant", "model_for_channels", "COMPARISON_DEFAULT", "default_real_photo"):
        assert gone not in readme
