import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from denoiser.cli import main
from denoiser.metrics import psnr

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def model_path(tiny_dncnn, tmp_path):
    path = tmp_path / "tiny.keras"
    tiny_dncnn.save(path)
    return path


def test_add_noise_then_denoise_a_file(photo, model_path, tmp_path, capsys):
    noisy = tmp_path / "noisy.png"
    assert main(["add-noise", str(photo), "--level", "25", "--seed", "3", "-o", str(noisy)]) == 0
    assert main(["denoise", str(noisy), "--model", str(model_path), "--tile", "32", "-o", str(tmp_path / "out.png"), "--quiet"]) == 0
    out = np.asarray(Image.open(tmp_path / "out.png"))
    assert out.shape == (60, 70, 3)


def test_denoise_with_the_ensemble_writes_the_engines_ensemble(photo, model_path, tmp_path):
    from denoiser.catalog import load_runtime
    from denoiser.engine import denoise
    from denoiser.io import load_image, to_integer

    out = tmp_path / "out.png"
    assert main(["denoise", str(photo), "--model", str(model_path), "--ensemble", "-o", str(out), "--quiet"]) == 0
    expected = denoise(load_image(photo).pixels, load_runtime(str(model_path)), ensemble=True)
    plain = denoise(load_image(photo).pixels, load_runtime(str(model_path)))
    assert np.array_equal(np.asarray(Image.open(out)), to_integer(expected))
    assert not np.array_equal(to_integer(expected), to_integer(plain))


def test_denoise_a_folder_and_a_glob(photo, tmp_path):
    second = tmp_path / "second.png"
    Image.open(photo).save(second)
    assert main(["denoise", str(tmp_path), "--model", "median", "--sigma", "20", "-o", str(tmp_path / "out"), "--quiet"]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["photo_denoised.png", "second_denoised.png"]
    assert main(["denoise", str(tmp_path / "s*.png"), "--model", "median", "--quiet"]) == 0
    assert (tmp_path / "second_denoised.png").exists()


def test_bad_input_gives_message_and_nonzero_exit(tmp_path, capsys):
    bad = tmp_path / "bad.png"
    bad.write_text("not really a png")
    assert main(["denoise", str(bad), "--model", "median"]) == 2
    err = capsys.readouterr().err
    assert "error:" in err and "Traceback" not in err
    assert main(["denoise", str(tmp_path / "missing.png")]) == 2
    assert main(["denoise", str(bad), "--model", "no_such_model"]) == 2


def test_evaluate_writes_markdown_and_csv(tmp_path, astronaut):
    folder = tmp_path / "set"
    folder.mkdir()
    for i in range(2):
        Image.fromarray(np.rint(astronaut[i * 20 : i * 20 + 40, :48] * 255).astype(np.uint8)).save(folder / f"{i}.png")
    md, csv = tmp_path / "t.md", tmp_path / "t.csv"
    assert main(["evaluate", str(folder), "--models", "median", "--sigmas", "15", "50", "--markdown", str(md), "--csv", str(csv), "--quiet"]) == 0
    assert "| median | set | gaussian | 15 | 2 |" in md.read_text()
    assert len(csv.read_text().strip().splitlines()) == 3


def test_evaluate_adds_the_named_noise_at_the_demos_level(tmp_path, astronaut, capsys):
    from denoiser.evaluate import protocol_noisy

    folder = tmp_path / "set"
    folder.mkdir()
    clean = np.rint(astronaut[:64, :64] * 255).astype(np.uint8)
    Image.fromarray(clean).save(folder / "a.png")
    assert main(["evaluate", str(folder), "--models", "median", "--noise", "salt_and_pepper", "--quiet"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("| median"))
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert cells[2:5] == ["salt_and_pepper", "25", "1"]
    noisy = protocol_noisy(clean / np.float32(255), 25, "a.png", "salt_and_pepper")
    # About a tenth of the pixels are impulses, and a median filter removes most of them.
    assert 0.07 < np.isin(noisy, (0.0, 1.0)).all(axis=-1).mean() < 0.13
    assert float(cells[5]) == pytest.approx(psnr(clean / np.float32(255), noisy), abs=0.01)
    assert float(cells[6]) > float(cells[5]) + 5


@pytest.mark.slow
def test_help_for_every_command():
    for command in ["denoise", "add-noise", "evaluate", "bench", "train", "export", "models"]:
        result = subprocess.run([sys.executable, "-m", "denoiser", command, "--help"], cwd=ROOT, capture_output=True, text=True)
        assert result.returncode == 0 and "usage:" in result.stdout
    result = subprocess.run([sys.executable, "-m", "denoiser"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode != 0


def test_models_lists_each_shipped_model_with_its_title_and_measured_quality(capsys, monkeypatch, tmp_path):
    from denoiser import bench
    from denoiser.catalog import available_models, read_manifest

    timed = []
    monkeypatch.setenv("DENOISER_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(bench, "tiled_rate", lambda runtime, **options: timed.append(runtime.name) or 1.234)
    assert main(["models"]) == 0
    lines = dict(line.split(maxsplit=1) for line in capsys.readouterr().out.splitlines())
    assert list(lines) == available_models()
    manifest = read_manifest()
    for name, entry in manifest.items():
        assert lines[name].startswith(entry["title"])
        for dataset, scores in entry["quality"].items():
            assert dataset in lines[name] and f"{scores['25']['psnr']:.2f}" in lines[name]
        for folder, scores in entry.get("real_quality", {}).items():
            assert f"held-out scenes of {folder}): {scores['psnr']:.2f} dB" in lines[name]
        assert f"{entry['cpu_mp_s']:.2f} MP/s where it was published" in lines[name]
    assert "(the default for added Gaussian noise)" in lines["dncnn_color_int8"]
    assert "(the default for photos that are already noisy)" in lines["dncnn_real_int8"]
    assert "(the default for added noise of any of the demo's types)" in lines["dncnn_mixed_int8"]
    assert lines["nlm"].startswith("Non-local means (classical); Classical filter")
    # Every model was timed here once; a second listing reads the cache.
    assert sorted(timed) == sorted(available_models())
    assert all("1.23 MP/s measured here" in line and "(cached)" not in line for line in lines.values())
    assert main(["models"]) == 0
    assert all(line.endswith("1.23 MP/s measured here (cached)") for line in capsys.readouterr().out.splitlines())
    assert len(timed) == len(available_models())


def test_a_speed_is_timed_once_per_machine_and_model_file(tmp_path, monkeypatch):
    from denoiser import speed

    monkeypatch.setenv("DENOISER_CACHE_DIR", str(tmp_path))
    first = speed.measured_speed("median")
    assert first[1] is False and first[0] > 0
    assert speed.measured_speed("median") == (round(first[0], 4), True)
    cache = __import__("json").loads(speed.cache_path().read_text())
    assert list(cache) == [speed.machine()] and "median" in cache[speed.machine()]
    monkeypatch.setattr(speed, "machine", lambda: "another CPU, 64 cores")
    assert speed.measured_speed("median", measure=False) is None


def test_progress_bar_rate_starts_after_the_first_batch():
    from denoiser.cli import _Bar

    bar = _Bar("image")
    bar(4, 9)
    # The first batch finished before the bar existed: it is where counting starts.
    assert bar.bar.initial == 4 and bar.bar.n == 4 and bar.bar.total == 9
    bar(9, 9)
    assert bar.bar.n == 9
    bar.close()


def test_lite_models_and_filters_run_from_the_command_line_without_tensorflow(tmp_path, astronaut):
    lite = "dncnn_color_int8"
    source = tmp_path / "in.png"
    Image.fromarray(np.rint(astronaut[:64, :64] * 255).astype(np.uint8)).save(source)
    script = (
        "import sys\nfrom denoiser.cli import main\n"
        f"assert main(['denoise', {str(source)!r}, '-o', {str(tmp_path / 'a.png')!r}, '--model', {lite!r}, '--quiet']) == 0\n"
        f"assert main(['denoise', {str(source)!r}, '-o', {str(tmp_path / 'b.png')!r}, '--model', 'median', '--quiet']) == 0\n"
        "assert main(['models', '--no-measure']) == 0\n"
        "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_denoise_without_a_model_uses_the_apps_real_photo_default(tmp_path, astronaut):
    """A photo given to `denoise` is already noisy: it gets the model and the estimated
    strength that the app's "already noisy" mode starts with."""
    source = tmp_path / "in.png"
    Image.fromarray(np.rint(astronaut[:48, :48] * 255).astype(np.uint8)).save(source)
    assert main(["denoise", str(source), "-o", str(tmp_path / "default.png"), "--quiet"]) == 0
    assert main(["denoise", str(source), "-o", str(tmp_path / "named.png"),
                 "--model", "dncnn_real_int8", "--quiet"]) == 0
    assert (tmp_path / "default.png").read_bytes() == (tmp_path / "named.png").read_bytes()


def test_evaluate_pairs_prints_a_table_for_each_model(tmp_path, astronaut):
    folder = tmp_path / "pairs"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for scene in ("one", "two"):
        clean = np.rint(astronaut[:64, :64] * 255).astype(np.uint8)
        noisy = np.clip(clean + rng.normal(0, 8, clean.shape), 0, 255).astype(np.uint8)
        Image.fromarray(clean).save(folder / f"{scene}_clean.png")
        Image.fromarray(noisy).save(folder / f"{scene}_noisy.png")
    table = tmp_path / "pairs.md"
    assert main(["evaluate", "--pairs", str(folder), "--models", "median", "bilateral", "--markdown", str(table),
                 "--csv", str(tmp_path / "pairs.csv"), "--quiet"]) == 0
    lines = table.read_text().splitlines()
    assert [line.split("|")[1].strip() for line in lines[2:]] == ["median", "bilateral"]
    assert all("| pairs | " in line and "| 2 |" in line for line in lines[2:])
    assert main(["evaluate", "--pairs", str(folder), "--crop", "4", "--quiet"]) == 2


@pytest.mark.parametrize("command, runner", [("train", "denoiser.training.train.train"),
                                             ("train-real", "denoiser.training.real_training.train_real")])
def test_the_training_commands_pass_the_whole_schedule_to_the_run(command, runner, monkeypatch, tmp_path):
    seen = {}

    def run(config, **options):
        seen.update(config=config, **options)
        return {"epoch": 0}

    monkeypatch.setattr(runner, run)
    argv = [command, "--train-dir", str(tmp_path), "--run-dir", str(tmp_path / "run"), "--resume", "--epochs", "7",
            "--lr", "6e-6", "--lr-halve-every", "4", "--min-lr", "1.5e-6", "--max-minutes", "30"]
    assert main(argv + (["--pairs-dir", str(tmp_path)] if command == "train-real" else [])) == 0
    config = seen["config"]
    assert (config.epochs, config.lr, config.lr_halve_every, config.min_lr, config.max_minutes) == (7, 6e-6, 4, 1.5e-6, 30)
    assert seen["resume"] is True


@pytest.mark.parametrize("command, runner, defaults", [
    ("train", "denoiser.training.train.train", "TrainConfig"),
    ("train-real", "denoiser.training.real_training.train_real", "RealConfig"),
])
def test_a_resumed_run_keeps_the_schedule_it_is_not_told_to_change(command, runner, defaults, monkeypatch, tmp_path):
    import json

    from denoiser.training import config as configs

    seen = []
    monkeypatch.setattr(runner, lambda config, **options: seen.append(config) or {"epoch": 0})
    run_dir = tmp_path / "run"
    argv = [command, "--train-dir", str(tmp_path), "--run-dir", str(run_dir)]
    argv += ["--pairs-dir", str(tmp_path)] if command == "train-real" else []
    assert main(argv) == 0  # a new run: the defaults
    default = getattr(configs, defaults)
    assert (seen[0].lr, seen[0].lr_halve_every, seen[0].min_lr) == (default.lr, default.lr_halve_every, default.min_lr)
    run_dir.mkdir()
    saved = {"epochs": 26, "lr": 6e-6, "lr_halve_every": 4, "min_lr": 1.5e-6, "max_minutes": 30.0}
    (run_dir / "state.json").write_text(json.dumps({"config": saved, "epoch": 26}))
    assert main(argv + ["--resume", "--epochs", "31"]) == 0
    resumed = seen[1]
    assert (resumed.epochs, resumed.lr, resumed.lr_halve_every, resumed.min_lr, resumed.max_minutes) == (
        31, 6e-6, 4, 1.5e-6, 30.0)
