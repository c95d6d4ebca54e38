"""The command line never destroys a file it did not make, and every bad argument or
failed write is one line on stderr with exit status 2, before any work is done."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from denoiser.cli import main
from denoiser.engine import check_image, denoise
from denoiser.errors import DenoiserError
from denoiser.runtimes import ClassicalRuntime

ROOT = Path(__file__).resolve().parent.parent


def run(args, capsys):
    code = main([*args, "--quiet"] if args[0] in ("denoise",) else args)
    captured = capsys.readouterr()
    return code, captured.err


def one_line_error(code, err):
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--tile", "-5"], "--tile"),
        (["--tile", "0"], "--tile"),
        (["--batch", "-1"], "--batch"),
        (["--batch", "0"], "--batch"),
        (["--quality", "0"], "--quality"),
        (["--quality", "500"], "--quality"),
        (["--sigma", "nan"], "--sigma"),
        (["--sigma", "-10"], "--sigma"),
        (["--tile", "7", "--model", "dncnn_color_int8"], "margin"),
        (["-o", "out.xyz"], "suffix"),
        (["-o", "/proc/denoised.png"], "cannot write"),
        (["-o", "/dev/full", "--overwrite"], "not a regular file"),
    ],
)
def test_bad_arguments_are_one_line_before_any_work(photo, tmp_path, capsys, monkeypatch, extra, message):
    monkeypatch.chdir(tmp_path)
    before = set(tmp_path.iterdir())
    code, err = run(["denoise", str(photo), "--model", "median", *extra], capsys)
    assert message in one_line_error(code, err)
    assert set(tmp_path.iterdir()) == before


def test_an_input_is_never_written_over(photo, capsys):
    original = photo.read_bytes()
    for extra in ([], ["--overwrite"]):
        code, err = run(["denoise", str(photo), "--model", "median", "-o", str(photo), *extra], capsys)
        assert "is an input" in one_line_error(code, err)
    assert photo.read_bytes() == original


def test_existing_outputs_are_kept_unless_overwrite(photo, capsys):
    target = photo.with_name("photo_denoised.png")
    target.write_bytes(b"an earlier result")
    code, err = run(["denoise", str(photo), "--model", "median"], capsys)
    assert "--overwrite" in one_line_error(code, err)
    assert target.read_bytes() == b"an earlier result"
    assert run(["denoise", str(photo), "--model", "median", "--overwrite"], capsys)[0] == 0
    assert Image.open(target).size == (70, 60)


def test_same_stem_inputs_get_distinct_outputs_and_earlier_outputs_are_skipped(photo, tmp_path, capsys):
    Image.open(photo).convert("RGB").save(tmp_path / "photo.jpg", quality=95)
    assert main(["denoise", str(tmp_path), "--model", "median", "--quiet"]) == 0
    outputs = sorted(p.name for p in tmp_path.glob("*_denoised.png"))
    assert outputs == ["photo_jpg_denoised.png", "photo_png_denoised.png"]
    capsys.readouterr()
    # Again over the folder: the earlier outputs are not inputs, and not replaced.
    code, err = run(["denoise", str(tmp_path), "--model", "median"], capsys)
    assert "already exists" in one_line_error(code, err)
    assert main(["denoise", str(tmp_path), "--model", "median", "--quiet", "--overwrite"]) == 0
    out = capsys.readouterr().out
    assert "skipping" in out and "photo_jpg_denoised.png" in out
    assert sorted(p.name for p in tmp_path.glob("*_denoised*")) == outputs


def test_a_recursive_glob_keeps_each_inputs_folder_under_the_output_folder(photo, tmp_path):
    for folder in ("a", "b/c"):
        (tmp_path / "in" / folder).mkdir(parents=True)
        Image.open(photo).save(tmp_path / "in" / folder / "photo.png")
    out = tmp_path / "out"
    assert main(["denoise", str(tmp_path / "in" / "**" / "*.png"), "-o", str(out), "--model", "median",
                 "--quiet"]) == 0
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*.png")) == ["a/photo_denoised.png",
                                                                             "b/c/photo_denoised.png"]


def test_an_output_file_for_several_inputs_is_refused(photo, tmp_path, capsys):
    Image.open(photo).save(tmp_path / "second.png")
    existing = tmp_path / "existing.png"
    existing.write_bytes(b"keep me")
    code, err = run(["denoise", str(photo), str(tmp_path / "second.png"), "--model", "median", "-o", str(existing)],
                    capsys)
    assert "name a folder" in one_line_error(code, err)
    assert existing.read_bytes() == b"keep me"


def test_a_failed_write_leaves_the_earlier_output_whole(photo, tmp_path):
    """A file-size limit of 4 KiB stops the write part way; the old file stays."""
    target = tmp_path / "big.png"
    Image.fromarray(np.full((64, 64, 3), 200, np.uint8)).save(target)
    original = target.read_bytes()
    large = tmp_path / "large.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (200, 200, 3), dtype=np.uint8)).save(large)
    script = (
        "import resource, sys; resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096)); "
        "from denoiser.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, "add-noise", str(large), "-o", str(target), "--overwrite"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2 and "could not write" in result.stderr and "Traceback" not in result.stderr
    assert target.read_bytes() == original
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.png", "large.png", "photo.png"]


def test_jpeg_output_says_that_the_alpha_was_dropped(tmp_path, capsys):
    rgba = tmp_path / "clear.png"
    Image.fromarray(np.full((16, 16, 4), 120, np.uint8), "RGBA").save(rgba)
    assert main(["denoise", str(rgba), "--model", "median", "--sigma", "5", "-o", str(tmp_path / "o.jpg"), "--quiet"]) == 0
    assert "alpha channel was dropped" in capsys.readouterr().out


@pytest.mark.parametrize(
    "image, message",
    [
        (np.full((16, 16, 3), 128, np.uint8), "float samples"),
        (np.zeros((16, 16, 2), np.float32), "1 or 3 channels"),
        (np.zeros((5, 3000, 3), np.float32), "at least 8"),
        (np.where(np.arange(256).reshape(16, 16, 1) == 7, np.nan, 0.5).astype(np.float32), "1 non-finite"),
        (np.full((16, 16, 1), np.inf, np.float32), "256 non-finite"),
        (np.full((16, 16, 3), 128.0, np.float32), "0 to 1"),
    ],
)
def test_the_engine_refuses_what_it_cannot_denoise(image, message):
    with pytest.raises(DenoiserError, match=message):
        check_image(image)
    with pytest.raises(DenoiserError, match=message):
        denoise(image, ClassicalRuntime("median"), level=10)


def test_noisy_values_beyond_0_1_are_accepted(astronaut):
    noisy = astronaut + np.random.default_rng(0).normal(0, 50 / 255, astronaut.shape).astype(np.float32)
    assert noisy.min() < 0 and noisy.max() > 1
    assert check_image(noisy) is not None


@pytest.mark.slow
def test_native_start_up_lines_stay_off_stderr_unless_verbose(photo, tmp_path):
    command = [sys.executable, "-m", "denoiser", "denoise", str(photo), "--model", "dncnn_color_int8", "--quiet"]
    quiet = subprocess.run([*command, "-o", str(tmp_path / "a.png")], cwd=ROOT, capture_output=True, text=True,
                           timeout=120)
    assert quiet.returncode == 0 and quiet.stderr == ""
    verbose = subprocess.run([command[0], "-m", "denoiser", "--verbose", *command[3:], "-o", str(tmp_path / "b.png")],
                             cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert verbose.returncode == 0 and "XNNPACK" in verbose.stderr


def png_header_claiming(width, height):
    """A PNG whose header claims `width` x `height` pixels and holds almost nothing."""
    import struct
    import zlib

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
    return b"\x89PNG\r\n\x1a\n" + header + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def encoded(image, fmt, **options):
    import io

    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def rotated_jpeg():
    im = Image.fromarray(np.tile(np.arange(24, dtype=np.uint8)[None, :, None] * 10, (16, 1, 3)))
    exif = im.getexif()
    exif[0x0112] = 6  # shown turned a quarter: stored 24 wide and 16 tall, shown 16 wide and 24 tall
    return encoded(im, "JPEG", exif=exif, quality=95)


def animated_gif():
    frames = [Image.new("P", (16, 16), i) for i in range(3)]
    import io

    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:])
    return buffer.getvalue()


GOOD = np.random.default_rng(1).integers(0, 256, (20, 24, 3), dtype=np.uint8)
HOSTILE = {
    # name: (file name, bytes, the error's words or None when it must work, output size)
    "empty file": ("empty.png", b"", "empty", None),
    "text file": ("notes.png", b"just some text\n" * 8, "not an image", None),
    "truncated PNG": ("cut.png", encoded(Image.fromarray(GOOD), "PNG")[:200], "truncated", None),
    "truncated JPEG": ("cut.jpg", encoded(Image.fromarray(GOOD), "JPEG")[:300], "truncated", None),
    "decompression bomb": ("bomb.png", png_header_claiming(30000, 30000), "900,000,000 pixels, over the limit", None),
    "animated GIF": ("moving.gif", animated_gif(), "not supported", None),
    "SVG": ("drawing.svg", b'<svg xmlns="http://www.w3.org/2000/svg" width="9" height="9"/>', "not an image", None),
    "palette PNG": ("palette.png", encoded(Image.fromarray(GOOD).convert("P"), "PNG"), None, (24, 20)),
    "CMYK JPEG": ("print.jpg", encoded(Image.fromarray(GOOD).convert("CMYK"), "JPEG"), None, (24, 20)),
    "EXIF rotation": ("turned.jpg", rotated_jpeg(), None, (16, 24)),
    "one pixel": ("dot.png", encoded(Image.fromarray(GOOD[:1, :1]), "PNG"), "at least 8 pixels", None),
    "a thin strip": ("strip.png", encoded(Image.fromarray(np.zeros((3, 5000, 3), np.uint8)), "PNG"), "5000x3", None),
    "spaces in the path": ("my holiday photo.png", encoded(Image.fromarray(GOOD), "PNG"), None, (24, 20)),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_files_get_one_line_or_a_complete_output(case, tmp_path, capsys):
    name, data, error, size = HOSTILE[case]
    source = tmp_path / name
    source.write_bytes(data)
    code, err = run(["denoise", str(source), *([] if error else ["--model", "median", "--sigma", "5"])], capsys)
    assert source.read_bytes() == data
    outputs = sorted(p for p in tmp_path.iterdir() if p != source)
    if error is not None:
        assert error in one_line_error(code, err) and outputs == []
    else:
        assert code == 0 and err == ""
        assert [p.name for p in outputs] == [f"{source.stem}_denoised.png"]
        assert Image.open(outputs[0]).size == size


@pytest.mark.parametrize("level", ["nan", "-10", "300"])
def test_add_noise_refuses_a_bad_level_before_reading(level, tmp_path, capsys):
    missing = tmp_path / "never_read.png"
    code, err = run(["add-noise", str(missing), "--level", level], capsys)
    assert "noise level" in one_line_error(code, err)
