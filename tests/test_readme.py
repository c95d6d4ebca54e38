"""The README's command-line examples run as written, on small images made here: what
the README tells a person to type works (`models` and `bench` time things, and run with
options that keep them short)."""

import shlex
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from denoiser.cli import main

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow  # a few models on a few small images; see pyproject.toml
# What a command that times every model or a 24 MP image gets here, to stay short.
SHORTER = {"models": ["--no-measure"], "bench": ["--megapixels", "0", "--size", "64", "--repeats", "1"]}


def readme_commands():
    """Each `denoiser ...` line of the README's "Command line" block, as arguments."""
    text = (ROOT / "README.md").read_text()
    block = text.split("## Command line", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    return [shlex.split(line.split("  #")[0])[1:] for line in block.splitlines() if line.startswith("denoiser ")]


def _photo(path, seed, size=(48, 64)):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0 : size[0], 0 : size[1]]
    clean = 0.5 + 0.3 * np.sin(x / 7.0 + seed)[..., None] * np.cos(y / 9.0)[..., None] * np.ones(3)
    noisy = np.clip(clean * 255 + rng.normal(0, 8, (*size, 3)), 0, 255).astype(np.uint8)
    Image.fromarray(noisy).save(path)
    return np.clip(clean * 255, 0, 255).astype(np.uint8)


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    """The files the README's examples name: a photo, shots, a test set and pairs."""
    monkeypatch.chdir(tmp_path)
    _photo(tmp_path / "photo.jpg", 0)
    _photo(tmp_path / "photo.png", 1)
    for folder, suffix in (("shots", ".tif"), ("CBSD68", ".png")):
        (tmp_path / folder).mkdir()
        for i in range(2):
            _photo(tmp_path / folder / f"{i}{suffix}", 2 + i)
    (tmp_path / "DIR").mkdir()
    for i in range(2):
        clean = _photo(tmp_path / "DIR" / f"scene{i}_noisy.png", 5 + i)
        Image.fromarray(clean).save(tmp_path / "DIR" / f"scene{i}_clean.png")
    return tmp_path


@pytest.mark.parametrize("args", readme_commands(), ids=lambda args: " ".join(args)[:60])
def test_the_readme_command_runs(workspace, args, capsys):
    # An option given twice takes its last value: the shorter one.
    assert main([*args, *SHORTER.get(args[0], [])]) == 0, capsys.readouterr().err
