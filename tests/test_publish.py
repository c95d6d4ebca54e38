import json

import numpy as np
import pytest
from PIL import Image

from denoiser.catalog import TILING, available_models, load_runtime
from denoiser.errors import DenoiserError
from denoiser.evaluate import evaluate
from denoiser.catalog import file_sha256 as sha256
from denoiser.training.publish import publish

pytestmark = pytest.mark.slow  # see pyproject.toml


@pytest.fixture
def images(tmp_path, astronaut):
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(3):
        Image.fromarray(np.rint(astronaut[i * 8 : i * 8 + 64, :64] * 255).astype(np.uint8)).save(folder / f"{i}.png")
    return folder


def test_publish_writes_models_manifest_and_report(tmp_path, images, tiny_dncnn):
    checkpoint = tmp_path / "best.keras"
    tiny_dncnn.save(checkpoint)
    state = {"config": {"arch": "dncnn", "sigma_range": [0, 55], "train_dir": str(images), "patch_size": 40, "batch_size": 64},
             "epoch": 3, "steps": 600, "patches_seen": 38400, "train_seconds": 7200.0,
             "validation_files": ["x.png"], "best_val_psnr_25": 25.0}
    models = tmp_path / "models"
    lines = []
    entries = publish(checkpoint, "tiny_color", title="Tiny", run_state=state, train_dir=images,
                      eval_sets={"SET": images}, sigmas=(25,), models_dir=models, tile=32, batch=2,
                      progress=lines.append)
    assert set(entries) == {"tiny_color", "tiny_color_fp16", "tiny_color_int8"}
    manifest = json.loads((models / "manifest.json").read_text())
    assert manifest["defaults"]["gaussian"]["model"] == "tiny_color_int8"
    assert available_models(models)[:3] == ["tiny_color_int8", "tiny_color", "tiny_color_fp16"]
    # What each model is, written by publish and read by the catalog alone.
    assert {name: (entry["family"], entry["purpose"], entry["variant"], entry["gray_counterpart"])
            for name, entry in manifest["models"].items()} == {
        "tiny_color": ("tiny_color", "gaussian", "float32", None),
        "tiny_color_fp16": ("tiny_color", "gaussian", "float16", None),
        "tiny_color_int8": ("tiny_color", "gaussian", entries["tiny_color_int8"]["variant"], None)}
    assert entries["tiny_color_int8"]["variant"] in ("int8 dynamic range", "int8 full integer")
    for name, entry in manifest["models"].items():
        path = models / entry["file"]
        assert path.exists() and entry["sha256"] == sha256(path)
        assert entry["parameters"] == tiny_dncnn.count_params() and entry["receptive_radius"] == 5
        assert entry["training"]["steps"] == 600 and entry["cpu_mp_s"] > 0
        # The manifest's numbers are what evaluate() measures with the shipped file.
        runtime = load_runtime(name, models_dir=models)
        row = evaluate(runtime, images, [25], channels=3)[0]
        assert entry["quality"]["SET"]["25"]["psnr"] == pytest.approx(row.psnr, abs=1e-3)
    # Every variant runs on the catalog's tiles for its architecture, which it was measured on
    # (the numbers above), not on its file's input shape.
    runtimes = [load_runtime(name, models_dir=models) for name in manifest["models"]]
    assert {(r.kind, r.tile) for r in runtimes} == {(kind, TILING["dncnn", kind]["tile"]) for kind in ("keras", "litert")}
    assert sorted(p.name for p in models.glob("*.tflite")) == ["tiny_color_fp16.tflite", "tiny_color_int8.tflite"]
    report = (models / "QUANTIZATION.md").read_text()
    assert "int8 dynamic range" in report and "int8 full integer" in report and "float16" in report
    assert any("SET" in line for line in lines)


def test_a_colour_family_names_its_gray_counterpart_slot_by_slot(tmp_path, images, tiny_dncnn, tiny_dncnn_gray):
    from denoiser.catalog import counterpart

    models = tmp_path / "models"
    state = {"config": {"arch": "dncnn", "sigma_range": [0, 55], "train_dir": str(images), "patch_size": 40,
                        "batch_size": 64}, "epoch": 1, "steps": 10, "patches_seen": 640, "train_seconds": 60.0}
    gray = tmp_path / "gray"
    gray.mkdir()
    for image in images.iterdir():
        Image.open(image).convert("L").save(gray / image.name)
    options = dict(run_state=state, sigmas=(25,), models_dir=models, tile=32, batch=1, progress=lambda line: None)
    with pytest.raises(DenoiserError, match="no published family 'tiny_gray'"):
        publish(tmp_path / "never.keras", "tiny_color", title="Tiny", gray_counterpart="tiny_gray", **options)
    tiny_dncnn_gray.save(tmp_path / "gray.keras")
    tiny_dncnn.save(tmp_path / "colour.keras")
    publish(tmp_path / "gray.keras", "tiny_gray", title="Tiny gray", train_dir=gray, eval_sets={"SET": gray},
            **options)
    publish(tmp_path / "colour.keras", "tiny_color", title="Tiny", gray_counterpart="tiny_gray", train_dir=images,
            eval_sets={"SET": images}, **options)
    entries = json.loads((models / "manifest.json").read_text())["models"]
    assert {name: entry["gray_counterpart"] for name, entry in entries.items()} == {
        "tiny_gray": None, "tiny_gray_fp16": None, "tiny_gray_int8": None,
        "tiny_color": "tiny_gray", "tiny_color_fp16": "tiny_gray_fp16", "tiny_color_int8": "tiny_gray_int8"}
    # Both int8 kinds fill the one int8 slot, whichever each family shipped.
    assert counterpart("tiny_color_int8", 1, models) == "tiny_gray_int8"
    assert counterpart("tiny_color_int8", 3, models) == "tiny_color_int8"


def test_a_noise_mix_is_measured_on_each_type_and_a_baseline_is_never_a_default(tmp_path, images, tiny_dncnn):
    from denoiser.architectures.registry import build_model
    from denoiser.catalog import model_for_noise, short_title

    models = tmp_path / "models"
    runs = {"tiny_ae": ("autoencoder", build_model("autoencoder", 3, features=4)), "tiny_mix": ("dncnn", tiny_dncnn)}
    for name, (arch, model) in runs.items():
        model.save(tmp_path / f"{name}.keras")
        state = {"config": {"arch": arch, "sigma_range": [0, 55], "train_dir": str(images), "patch_size": 40,
                            "batch_size": 64, "noise": ["gaussian", "salt_and_pepper"]},
                 "epoch": 1, "steps": 10, "patches_seen": 640, "train_seconds": 60.0, "best_val_psnr_mean": 20.0}
        publish(tmp_path / f"{name}.keras", name, title=name, run_state=state, train_dir=images,
                eval_sets={"SET": images}, sigmas=(25,), models_dir=models, tile=32, batch=1, progress=lambda line: None)
    manifest = json.loads((models / "manifest.json").read_text())
    assert list(manifest["defaults"]) == ["mixed_noise"]
    assert manifest["defaults"]["mixed_noise"]["model"] == "tiny_mix_int8"
    entry = manifest["models"]["tiny_ae_int8"]
    assert entry["purpose"] == "baseline" and entry["training"]["noise"] == ["gaussian", "salt_and_pepper"]
    assert manifest["models"]["tiny_mix"]["purpose"] == "mixed_noise"
    assert entry["input_multiple"] == 4 and short_title("tiny_ae_int8", manifest["models"]) == "Baseline AE · int8"
    assert model_for_noise("random_impulse", models)[0] == "tiny_mix_int8"
    # The other noise type's number is what evaluate() measures with the shipped file, at the demo's level.
    runtime = load_runtime("tiny_ae_int8", models_dir=models)
    row = evaluate(runtime, images, [25], channels=3, noise="salt_and_pepper")[0]
    assert entry["noise_quality"]["salt_and_pepper"]["SET"]["25"]["psnr"] == pytest.approx(row.psnr, abs=1e-3)


def test_int8_variants_come_from_the_quantization_aware_run(tmp_path, images, tiny_dncnn):
    from denoiser.training.qat import quantization_aware

    tiny_dncnn.save(tmp_path / "best.keras")
    aware = quantization_aware(tiny_dncnn)
    last = aware.get_layer("conv_out")
    # A "fine-tuning" that made the noise estimate a twentieth of the original's.
    last.set_weights([last.kernel * 0.05, np.zeros(last.bias.shape, np.float32)])
    aware.save(tmp_path / "aware.keras")
    config = {"arch": "dncnn", "sigma_range": [0, 55], "train_dir": str(images), "patch_size": 40, "batch_size": 64}
    state = {"config": config, "epoch": 3, "steps": 600, "patches_seen": 38400, "train_seconds": 7200.0}
    aware_state = {"config": {**config, "run_dir": "runs/tiny_aware", "init_from": "best.keras"},
                   "epoch": 1, "steps": 10, "patches_seen": 640, "train_seconds": 36.0, "best_val_psnr_25": 26.0}
    models = tmp_path / "models"
    entries = publish(tmp_path / "best.keras", "tiny", title="Tiny", run_state=state, train_dir=images,
                      eval_sets={"SET": images}, sigmas=(25,), models_dir=models, tile=32, batch=2,
                      int8_from=(tmp_path / "aware.keras", aware_state), progress=lambda line: None)
    assert entries["tiny_int8"]["quantization_aware"]["run"] == "tiny_aware"
    assert "quantization_aware" not in entries["tiny_fp16"] and "quantization_aware" not in entries["tiny"]
    noisy = np.random.default_rng(0).random((2, 32, 32, 3)).astype(np.float32)
    int8 = load_runtime("tiny_int8", models_dir=models).predict(noisy)
    fp16 = load_runtime("tiny_fp16", models_dir=models).predict(noisy)
    assert np.abs(noisy - int8).mean() < 0.2 * np.abs(noisy - fp16).mean()
    assert "quantization-aware" in (models / "QUANTIZATION.md").read_text()


def test_calibration_tiles_come_from_training_images_smaller_than_a_tile(images):
    from denoiser.training.export import calibration_set

    tiles = calibration_set(images, channels=1, tile=96, count=5, sigma_range=(25, 25), rng=np.random.default_rng(0))
    assert tiles.shape == (5, 96, 96, 1) and tiles.dtype == np.float32
    assert 0.05 < tiles.std() and abs(tiles.mean() - 0.5) < 0.4


def test_a_real_photo_model_is_calibrated_on_its_training_scenes_at_the_level_the_app_feeds(tmp_path, images):
    from denoiser.profile import estimate_level
    from denoiser.training.export import real_conversion_samples

    rng = np.random.default_rng(0)
    clean = np.asarray(Image.open(images / "0.png"))
    for scene, sigma in (("quiet", 2), ("loud", 30)):
        noisy = np.clip(clean + rng.normal(0, sigma, clean.shape), 0, 255).astype(np.uint8)
        Image.fromarray(clean).save(tmp_path / f"{scene}_clean.png")
        Image.fromarray(noisy).save(tmp_path / f"{scene}_noisy.png")
    tiles = real_conversion_samples(tmp_path, ["quiet"], tile=32)
    assert tiles.shape == (4096, 32, 32, 4) and tiles.dtype == np.float32
    quiet = np.asarray(Image.open(tmp_path / "quiet_noisy.png"), np.float32) / 255
    np.testing.assert_allclose(tiles[..., 3], estimate_level(quiet) / 255, rtol=1e-6)
    assert tiles[..., :3].std() < 0.5  # a loud crop would be far noisier; none is there
    with pytest.raises(DenoiserError, match="none of the run's training scenes"):
        real_conversion_samples(tmp_path, ["elsewhere"], tile=32)


def test_a_real_photo_run_is_measured_on_its_held_out_scenes_and_becomes_the_photo_default(tmp_path, images):
    from denoiser.architectures.registry import build_model
    from denoiser.evaluate import evaluate_pairs
    from support import randomize

    pairs = tmp_path / "pairs"
    pairs.mkdir()
    rng = np.random.default_rng(0)
    for scene in ("a", "b", "c"):
        clean = np.asarray(Image.open(images / "0.png"))
        noisy = np.clip(clean + rng.normal(0, 8, clean.shape), 0, 255).astype(np.uint8)
        Image.fromarray(clean).save(pairs / f"{scene}_clean.png")
        Image.fromarray(noisy).save(pairs / f"{scene}_noisy.png")
    randomize(build_model("dncnn", 3, level_map=True, depth=4, features=8), seed=2).save(tmp_path / "best.keras")
    state = {"config": {"arch": "dncnn", "train_dir": str(images), "pairs_dir": str(pairs), "patch_size": 32,
                        "batch_size": 4, "run_dir": "runs/tiny_real"},
             "epoch": 2, "steps": 20, "patches_seen": 80, "train_seconds": 60.0, "best_val_psnr": 30.0,
             "train_scenes": ["a"], "validation_scenes": ["b", "c"]}
    models = tmp_path / "models"
    entries = publish(tmp_path / "best.keras", "tiny_real", title="Tiny real", run_state=state, pairs_dir=pairs,
                      crop=48, models_dir=models, tile=32, batch=1, progress=lambda line: None)
    assert set(entries) == {"tiny_real", "tiny_real_fp16", "tiny_real_int8"}
    manifest = json.loads((models / "manifest.json").read_text())
    assert list(manifest["defaults"]) == ["real_photo"]
    assert manifest["defaults"]["real_photo"]["model"] == "tiny_real_int8"
    assert {entry["purpose"] for entry in entries.values()} == {"real_photo"}
    for name, entry in entries.items():
        assert entry["level_map"] and entry["training"]["best_validation_psnr_real"] == 30.0
        scores = entry["real_quality"]["pairs"]
        assert scores["scenes"] == ["b", "c"] and scores["crop"] == 48
        # The manifest's number is what evaluate_pairs() measures with the shipped file.
        row = evaluate_pairs({name: load_runtime(name, models_dir=models)}, pairs, scenes=["b", "c"], crop=48)[0]
        assert scores["psnr"] == pytest.approx(row.psnr, abs=1e-3)
    assert [row["variant"] for row in manifest["quantization"]["tiny_real"]] == [
        "Keras float32", "float16", "int8 dynamic range", "int8 full integer"]
    build_model("dncnn", 3, depth=4, features=8).save(tmp_path / "blind.keras")
    with pytest.raises(DenoiserError, match="takes no noise-level map"):
        publish(tmp_path / "blind.keras", "blind", title="Blind", run_state=state, pairs_dir=pairs, models_dir=models)
