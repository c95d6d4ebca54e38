"""Hostile inputs, round 3, where a row of `test_hostile_inputs.py`'s table cannot say
it: what a file holds after the read, a file that appears while a run works, a run
that is interrupted, and the app's pages."""

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from denoiser.cli import main
from denoiser.errors import ImageError
from denoiser.io import load_image

ROOT = Path(__file__).resolve().parent.parent
COLOUR = np.random.default_rng(5).integers(0, 256, (40, 48, 3), dtype=np.uint8)


def png_bytes(pixels, **options):
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG", **options)
    return buffer.getvalue()


@pytest.mark.parametrize("mode, pixels, transparent", [
    ("1", COLOUR[..., 0] > 128, 255 if COLOUR[0, 0, 0] > 128 else 0),
    ("L", COLOUR[..., 0], int(COLOUR[0, 0, 0])),
    ("RGB", COLOUR, tuple(int(v) for v in COLOUR[0, 0])),
])
def test_simple_png_transparency_becomes_alpha(mode, pixels, transparent):
    image = Image.fromarray(pixels).convert(mode)
    picture = load_image(png_bytes(np.asarray(image), transparency=transparent) if mode != "1"
                         else _saved(image, transparency=transparent))
    assert picture.alpha is not None
    assert picture.alpha[0, 0] == 0.0 and picture.alpha.max() == 1.0


def _saved(image, **options):
    buffer = io.BytesIO()
    image.save(buffer, "PNG", **options)
    return buffer.getvalue()


def test_a_float_tiff_is_turned_by_its_orientation_tag(tmp_path):
    values = np.zeros((8, 12), np.float32)
    values[0, 0] = 1.0
    tifffile.imwrite(tmp_path / "six.tif", values, extratags=[(274, "H", 1, 6, True)])
    picture = load_image(tmp_path / "six.tif")
    # Orientation 6: turned a quarter clockwise, so the top-left pixel goes top-right.
    assert picture.pixels.shape == (12, 8, 1)
    assert picture.pixels[0, 7, 0] == 1.0 and picture.pixels[0, 0, 0] == 0.0


def test_damaged_exif_is_left_out_with_a_note_and_the_photo_is_read():
    picture = load_image(_corrupt_exif_png())
    assert picture.pixels.shape == (40, 48, 3)
    assert picture.exif is None and picture.notes == ("its EXIF metadata is damaged and was left out",)


def test_a_tiff_keeps_its_descriptive_exif_and_none_of_its_structure(tmp_path):
    tifffile.imwrite(tmp_path / "described.tif", COLOUR, description="a harbour", software="Scanner 2",
                     rowsperstrip=1, bigtiff=True)
    picture = load_image(tmp_path / "described.tif")
    kept = Image.Exif()
    kept.load(picture.exif)
    assert kept[0x010E] == "a harbour" and kept[0x0131] == "Scanner 2"
    assert not {0x0111, 0x0117, 0x0116, 0x0100, 0x0101} & set(kept)  # strip offsets, counts, rows, sizes


def test_the_pixel_limit_is_ours_alone_and_speaks_in_exact_pixels(tmp_path):
    Image.new("L", (10000, 5001)).save(tmp_path / "wide.png")
    with pytest.raises(ImageError, match=r"10000x5001 is 50,010,000 pixels, over the limit of 50,000,000 pixels"):
        load_image(tmp_path / "wide.png")
    # Past Pillow's own guard of 89 MP: a person who set a higher limit is not refused.
    assert load_image(tmp_path / "wide.png", max_pixels=60_000_000).pixels.shape == (5001, 10000, 1)


def test_a_file_that_appears_at_the_output_while_a_run_works_is_kept(tmp_path, capsys, monkeypatch):
    from denoiser import batch

    source = tmp_path / "a.png"
    Image.fromarray(COLOUR).save(source)
    target = tmp_path / "out.png"
    real = batch.denoise

    def denoise_then_someone_writes(*args, **options):
        result = real(*args, **options)
        target.write_bytes(b"another program's file")
        return result

    monkeypatch.setattr(batch, "denoise", denoise_then_someone_writes)
    assert main(["denoise", str(source), "--model", "median", "--sigma", "5", "-o", str(target), "--quiet"]) == 2
    assert target.read_bytes() == b"another program's file"
    assert "appeared while this run worked" in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir() if p.suffix == ".part"] == []


def test_a_live_part_file_of_another_run_is_left_alone(tmp_path):
    import fcntl

    from denoiser.outputs import remove_stale_parts

    target = tmp_path / "out.png"
    live, dead = tmp_path / ".out.png.aaaaaaaa.part", tmp_path / ".out.png.bbbbbbbb.part"
    dead.write_bytes(b"a killed write")
    with open(live, "wb") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        remove_stale_parts(target)
        assert live.exists() and not dead.exists()


def test_a_speed_cache_that_is_not_a_table_is_measured_again(tmp_path, monkeypatch, capsys):
    from denoiser import speed

    monkeypatch.setenv("DENOISER_CACHE_DIR", str(tmp_path))
    (tmp_path / "speed.json").write_text("[]")
    assert speed.measured_speed("median", measure=False) is None
    assert main(["models", "--no-measure"]) == 0
    assert "Traceback" not in capsys.readouterr().err


@pytest.mark.slow
def test_a_file_name_that_is_not_utf8_is_printed_with_escapes_and_the_batch_goes_on(tmp_path):
    folder = os.fsencode(tmp_path)
    odd = os.path.join(folder, b"caf\xe9.png")
    Image.fromarray(COLOUR).save(os.fsdecode(odd))
    Image.fromarray(COLOUR).save(tmp_path / "plain.png")
    done = subprocess.run([sys.executable, "-m", "denoiser", "denoise", os.fsdecode(odd), str(tmp_path / "plain.png"),
                           "--model", "median", "--sigma", "5", "-o", str(tmp_path / "out"), "--quiet"],
                          cwd=ROOT, capture_output=True, env={**os.environ, "PYTHONIOENCODING": "utf-8"}, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert b"caf\\udce9.png" in done.stdout or b"caf\\xe9.png" in done.stdout
    assert sorted(os.listdir(tmp_path / "out")) == [os.fsdecode(b"caf\xe9_denoised.png"), "plain_denoised.png"]


@pytest.mark.slow
def test_ctrl_c_early_in_a_run_is_one_line_and_status_130(tmp_path):
    Image.fromarray(np.zeros((2000, 2000, 3), np.uint8)).save(tmp_path / "big.png")
    process = subprocess.Popen([sys.executable, "-m", "denoiser", "denoise", str(tmp_path / "big.png"),
                                "--model", "nlm", "--sigma", "5", "--quiet"], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(0.8)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert err.decode().strip() == "interrupted"
    assert not (tmp_path / "big_denoised.png").exists()


ALIGNED = ["unet_real_int8", "dncnn_real_int8", "ridnet_color_int8"]


@pytest.mark.slow
@pytest.mark.parametrize("model", ALIGNED)
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tile=st.integers(min_value=1, max_value=160))
def test_any_tile_is_run_or_refused_in_one_line_against_each_models_grid(model, tile, tmp_path_factory, capsys):
    folder = tmp_path_factory.mktemp("tile")
    Image.fromarray(COLOUR[:24, :24]).save(folder / "a.png")
    code = main(["denoise", str(folder / "a.png"), "--model", model, "--sigma", "5", "--tile", str(tile),
                 "-o", str(folder / "out.png"), "--overwrite", "--quiet"])
    err = capsys.readouterr().err
    assert code in (0, 2) and "Traceback" not in err
    if code == 2:
        assert len(err.strip().splitlines()) == 1 and "tiles must be at least" in err, err


# The app: each page shows a bad file's message, never a traceback, and takes odd sizes.
def _corrupt_exif_png():
    """A PNG whose eXIf chunk holds no TIFF structure: Pillow's EXIF parser raises on it."""
    return png_bytes(COLOUR, exif=b"Exif\x00\x00XX*\x00garbage")


def _strip(shape):
    return png_bytes(np.random.default_rng(1).integers(0, 256, (*shape, 3), dtype=np.uint8))


def _int16_tiff():
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, (COLOUR[..., 0].astype(np.int16) - 100))
    return buffer.getvalue()


def _forged_jpeg():
    buffer = io.BytesIO()
    Image.fromarray(COLOUR[:8, :8]).save(buffer, "JPEG")
    data = bytearray(buffer.getvalue())
    frame = data.index(b"\xff\xc0")
    data[frame + 5 : frame + 9] = (7000).to_bytes(2, "big") * 2
    return bytes(data)


APP_ROWS = {
    "corrupt EXIF on Denoise": ("pages/denoise.py", "input", "odd.png", _corrupt_exif_png, None),
    "corrupt EXIF on Compare": ("pages/compare.py", "compare_input", "odd.png", _corrupt_exif_png, None),
    "corrupt EXIF on Noise analysis": ("pages/noise_analysis.py", "analysis_input", "odd.png", _corrupt_exif_png,
                                       None),
    "an int16 TIFF": ("pages/denoise.py", "input", "signed.tif", _int16_tiff, "int16 samples"),
    "a forged JPEG header": ("pages/denoise.py", "input", "forged.jpg", _forged_jpeg, "truncated or forged"),
    "a 9700x8 strip on Denoise": ("pages/denoise.py", "input", "strip.png", lambda: _strip((8, 9700)), None),
    "an 8x8 photo on Compare": ("pages/compare.py", "compare_input", "tiny.png", lambda: _strip((8, 8)), None),
    "a 12000x8 strip on Compare": ("pages/compare.py", "compare_input", "strip.png", lambda: _strip((8, 12000)),
                                   None),
}


@pytest.mark.parametrize("case", sorted(APP_ROWS))
def test_hostile_uploads_in_the_app(case, monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.chdir(ROOT)
    page, key, name, make, error = APP_ROWS[case]
    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
    app.run()
    if page != "pages/denoise.py":
        app.switch_page(page)
        app.run()
    else:
        app.selectbox(key="model_gaussian").set_value("median")
        app.run()
    app.radio(key=f"{key}_source").set_value("Upload")
    app.run()
    app.file_uploader[0].set_value((name, make(), "application/octet-stream"))
    app.run()
    # The fast median filter, where the page got as far as its model choice.
    for widget, kind, value in (("compare_models", "multiselect", ["median"]), ("model_real", "selectbox", "nlm"),
                                ("analysis_models", "multiselect", ["median"])):
        if any(w.key == widget for w in getattr(app, kind)):
            getattr(app, kind)(key=widget).set_value(value)
            app.run()
    assert not app.exception, app.exception
    if error is None:
        assert not app.error, [e.value for e in app.error]
    else:
        assert app.error and error in app.error[0].value


def test_uncaught_errors_show_no_traceback_in_the_browser():
    import tomllib

    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["client"]["showErrorDetails"] == "none"


def test_the_speed_cache_file_keeps_other_machines(tmp_path, monkeypatch):
    from denoiser import speed

    monkeypatch.setenv("DENOISER_CACHE_DIR", str(tmp_path))
    (tmp_path / "speed.json").write_text(json.dumps({"another CPU": {"median": 9.0}, "broken": [1, 2]}))
    assert speed.measured_speed("median", measure=False) is None
    speed.measured_speed("median")
    cache = json.loads((tmp_path / "speed.json").read_text())
    assert cache["another CPU"] == {"median": 9.0} and "broken" not in cache
