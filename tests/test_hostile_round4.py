"""Hostile inputs, round 4 (#47): each case a row or a test that failed before."""

import json
from pathlib import Path

import numpy as np
import pytest

from denoiser import service
from denoiser.errors import DenoiserError


@pytest.mark.parametrize("a, b", [
    # One gray, two shapes, the same bytes: one person downloaded the other's photo.
    (np.full((96, 64, 3), 0.5, np.float32), np.full((64, 96, 3), 0.5, np.float32)),
    # Black as 4x4x3 float32 and as 4x4x12 uint8: 192 zero bytes each.
    (np.zeros((4, 4, 3), np.float32), np.zeros((4, 4, 12), np.uint8)),
    # A gray and a colour photo of one value.
    (np.full((12, 8, 1), 0.25, np.float32), np.full((4, 8, 3), 0.25, np.float32)),
])
def test_two_photos_with_the_same_bytes_have_different_cache_keys(a, b):
    assert a.tobytes() == b.tobytes()
    assert service.image_key(a) != service.image_key(b)


def test_the_same_photo_has_the_same_key():
    photo = np.random.default_rng(0).random((32, 48, 3), dtype=np.float32)
    assert service.image_key(photo) == service.image_key(photo.copy())


# Files destroyed: `export` onto its own model or an existing file, `publish` outside
# models/, a manifest that names a file outside models/ or one replaced since publish.
def _one_line(code, err):
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error:") and "Traceback" not in err, err
    return lines[0]


@pytest.fixture
def keras_model(tmp_path, tiny_dncnn):
    path = tmp_path / "m.keras"
    tiny_dncnn.save(path)
    return path


@pytest.mark.parametrize("output, message", [
    ("m.keras", "tflite"),                    # the trained model replaced by LiteRT bytes
    ("same.tflite", "is an input"),           # a hard link to the model: one file on disk
    ("existing.tflite", "--overwrite"),       # an existing file, no --overwrite
    ("missing/out.tflite", "no folder"),
])
def test_export_never_writes_over_its_model_or_an_existing_file(keras_model, output, message, capsys):
    from denoiser.cli import main

    folder = keras_model.parent
    (folder / "existing.tflite").write_bytes(b"keep me")
    (folder / "same.tflite").hardlink_to(keras_model)
    before = {path.name: path.read_bytes() for path in folder.iterdir() if path.is_file()}
    line = _one_line(main(["export", str(folder / "m.keras"), str(folder / output)]), capsys.readouterr().err)
    assert message in line
    assert {path.name: path.read_bytes() for path in folder.iterdir() if path.is_file()} == before


@pytest.mark.parametrize("name", ["../escaped", "/tmp/abs", "a/b", "", "dots..", ".hidden", "x" * 65])
def test_a_published_name_is_one_plain_file_name(name):
    from denoiser.training.publish import check_model_name

    with pytest.raises(DenoiserError, match="not a model name"):
        check_model_name(name)


@pytest.mark.parametrize("file", ["../outside.tflite", "/etc/passwd", "sub/m.tflite", "", None, ".."])
def test_a_manifest_file_outside_the_models_folder_is_refused(tmp_path, file):
    from denoiser.catalog import load_runtime

    entry = {"title": "x", "architecture": "dncnn", "runtime": "litert"}
    if file is not None:
        entry["file"] = file
    (tmp_path / "manifest.json").write_text(json.dumps({"models": {"bad": entry}}))
    with pytest.raises(DenoiserError, match="names no file inside"):
        load_runtime("bad", models_dir=tmp_path)


def test_a_model_file_replaced_after_publish_is_refused(tmp_path):
    import shutil

    from denoiser.catalog import MODELS_DIR, load_runtime, read_manifest

    entry = read_manifest()["dncnn_real_int8"]
    shutil.copy(Path(MODELS_DIR) / entry["file"], tmp_path / entry["file"])
    (tmp_path / "manifest.json").write_text(json.dumps({"models": {"dncnn_real_int8": entry}}))
    assert load_runtime("dncnn_real_int8", models_dir=tmp_path).name == "dncnn_real_int8"
    with open(tmp_path / entry["file"], "ab") as handle:
        handle.write(b"\0")
    with pytest.raises(DenoiserError, match="sha256 differs"):
        load_runtime("dncnn_real_int8", models_dir=tmp_path)


@pytest.mark.parametrize("args, message", [
    (["denoise", "", "--model", "median"], "empty input name"),
    (["add-noise", " "], "empty input name"),
    (["bench", "--megapixels", "inf"], "--megapixels"),
    (["bench", "--megapixels", "1e9"], "--megapixels"),
])
def test_limits_the_readme_states_are_one_line(args, message, tmp_path, monkeypatch, capsys):
    from denoiser.cli import main

    monkeypatch.chdir(tmp_path)
    photo = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    from PIL import Image

    Image.fromarray(photo).save(tmp_path / "here.png")
    try:
        code = main(args)
    except SystemExit as exit:
        code = exit.code
    assert message in _one_line(code, capsys.readouterr().err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["here.png"]
