"""Hostile inputs, round 2: one row per case a hostile but realistic user tried, those
that failed once and representative ones that held. Each row sets up files in the
test's folder, runs one command (or library call), and says what must come of it:
an exit status, words in the one `error:` line (or in the output), and files that
must stay as they were."""

from pathlib import Path

import numpy as np
import pytest
import tifffile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from denoiser.catalog import load_runtime
from denoiser.cli import main
from denoiser.engine import denoise
from denoiser.errors import DenoiserError

RNG = np.random.default_rng(3)
COLOUR = RNG.integers(0, 256, (40, 48, 3), dtype=np.uint8)


def png(path, pixels=COLOUR, **options):
    Image.fromarray(pixels).save(path, **options)
    return path


def colour_set(tmp):
    folder = tmp / "set"
    folder.mkdir()
    png(folder / "clean0.png")
    png(folder / "clean1.png", COLOUR[::-1])
    return folder


def sparse_float_tiff(tmp):
    path = tmp / "huge.tif"
    tifffile.imwrite(path, shape=(7500, 8000), dtype="float32")  # 60 MP, written sparse
    return path


def multipage_tiff(tmp):
    path = tmp / "pages.tif"
    tifffile.imwrite(path, RNG.integers(0, 256, (3, 32, 32), dtype=np.uint8), photometric="minisblack")
    return path


def looping_link(tmp):
    link = tmp / "loop.png"
    link.symlink_to(link)
    return link


# Each row: (set-up returning the arguments, exit status, words on stderr or None, words on stdout or None).
CLI_ROWS = {
    # evaluate writes tables by denoise's rules
    "evaluate --markdown onto an input image": (
        lambda t: ["evaluate", str(colour_set(t)), "--models", "median", "--sigmas", "25",
                   "--markdown", str(t / "set" / "clean0.png")], 2, "is an input", None),
    "evaluate --csv over an existing file": (
        lambda t: ["evaluate", str(colour_set(t)), "--models", "median", "--sigmas", "25",
                   "--csv", str(_existing(t / "notes.csv"))], 2, "already exists", None),
    "evaluate --markdown names a folder": (
        lambda t: ["evaluate", str(colour_set(t)), "--models", "median", "--markdown", str(t)], 2, "is a folder", None),
    "evaluate --csv in a missing folder": (
        lambda t: ["evaluate", str(colour_set(t)), "--models", "median", "--csv", str(t / "no" / "t.csv")], 2,
        "no folder", None),
    "evaluate --limit -1": (lambda t: ["evaluate", str(colour_set(t)), "--limit", "-1"], 2, "--limit", None),
    "evaluate --limit 0": (lambda t: ["evaluate", str(colour_set(t)), "--limit", "0"], 2, "--limit", None),
    "evaluate --channels 1 on a colour set": (
        lambda t: ["evaluate", str(colour_set(t)), "--models", "median", "--sigmas", "25", "--channels", "1"], 2,
        "colour image in a grayscale", None),
    "evaluate --sigmas -10": (lambda t: ["evaluate", str(colour_set(t)), "--sigmas", "-10"], 2, "--sigmas", None),
    "evaluate on a folder that holds no images (holds)": (
        lambda t: ["evaluate", str(t), "--models", "median"], 2, "no images", None),
    # bench arguments
    "bench --size 0": (lambda t: ["bench", "--size", "0"], 2, "--size", None),
    "bench --size -8": (lambda t: ["bench", "--size", "-8"], 2, "--size", None),
    "bench --repeats 0": (lambda t: ["bench", "--repeats", "0"], 2, "--repeats", None),
    "bench --megapixels -1": (lambda t: ["bench", "--megapixels", "-1"], 2, "--megapixels", None),
    "bench with an unknown model": (lambda t: ["bench", "--models", "no_such_model"], 2, "unknown model", None),
    # add-noise
    "add-noise --seed -1": (lambda t: ["add-noise", str(png(t / "a.png")), "--seed", "-1"], 2, "--seed", None),
    "add-noise --level 300 (holds)": (lambda t: ["add-noise", str(png(t / "a.png")), "--level", "300"], 2,
                                      "noise level", None),
    # denoise: links, formats, several inputs
    "denoise a link that loops": (lambda t: ["denoise", str(looping_link(t)), "--model", "median"], 2, "link",
                                  None),
    "denoise -o a link that loops": (
        lambda t: ["denoise", str(png(t / "a.png")), "--model", "median", "-o", str(looping_link(t))], 2, "link",
        None),
    "denoise -o out.png --format JPEG": (
        lambda t: ["denoise", str(png(t / "a.png")), "--model", "median", "-o", str(t / "out.png"),
                   "--format", "JPEG"], 2, "--format is JPEG", None),
    "two inputs with -o out.png": (
        lambda t: ["denoise", str(png(t / "a.png")), str(png(t / "b.png")), "--model", "median",
                   "-o", str(t / "out.png")], 2, "names an image file", None),
    "an input that is an output of another (holds)": (
        lambda t: ["denoise", str(png(t / "a.png")), "--model", "median", "-o", str(t / "a.png")], 2,
        "is an input", None),
    "a bad file among good ones": (
        lambda t: ["denoise", str(png(t / "a.png")), str(_text(t / "text.png")), str(png(t / "b.png")),
                   "--model", "median", "--sigma", "5", "-o", str(t / "out")], 1, "text.png", "b_denoised.png"),
    "resume a killed batch": (lambda t: _killed_batch(t), 0, None, "skipping"),
    "a 12x12 photo with the real-photo model and no --sigma": (
        lambda t: ["denoise", str(png(t / "small.png", COLOUR[:12, :12]))], 0, None, "estimated noise level"),
    # TIFF
    "a forged TIFF header": (lambda t: ["denoise", str(_bytes(t / "forged.tif", b"II*\0\x08\0\0\0" + b"\xff" * 64)),
                                        "--model", "median"], 2, "not an image", None),
    "a 60-megapixel float TIFF": (lambda t: ["denoise", str(sparse_float_tiff(t)), "--model", "median"], 2,
                                  "over the limit", None),
    "a multi-page TIFF": (lambda t: ["denoise", str(multipage_tiff(t)), "--model", "median", "--sigma", "5"], 0,
                          None, "only the first"),
}


def _existing(path):
    path.write_text("keep me\n")
    return path


def _text(path):
    path.write_text("not an image\n")
    return path


def _bytes(path, data):
    path.write_bytes(data)
    return path


def _killed_batch(tmp):
    """Two inputs, one finished before the kill, and the kill's leftover part file."""
    out = tmp / "out"
    out.mkdir()
    png(tmp / "a.png"), png(tmp / "b.png")
    png(out / "a_denoised.png", COLOUR[:8, :8])
    (out / ".b_denoised.png.x1y2.part").write_bytes(b"half a file")
    return ["denoise", str(tmp / "a.png"), str(tmp / "b.png"), "--model", "median", "--sigma", "5",
            "-o", str(out), "--resume"]


# Round 3: the promises of the README's "Files are never lost" and "Formats", held.
def bigtiff(tmp, name="b.tif", **options):
    path = tmp / name
    tifffile.imwrite(path, COLOUR, **options)
    return path


def denoised_again(tmp):
    """A BigTIFF's PNG output, which once could not be read back (its TIFF tags were copied as EXIF)."""
    assert main(["denoise", str(bigtiff(tmp, bigtiff=True)), "--model", "median", "--sigma", "5", "--quiet"]) == 0
    return ["denoise", str(tmp / "b_denoised.png"), "--model", "median", "--sigma", "5"]


def integer_tiff(tmp, dtype):
    path = tmp / f"{dtype}.tif"
    tifffile.imwrite(path, (COLOUR[..., 0].astype(np.int64) * 100).astype(dtype))
    return path


def animated(tmp, fmt):
    path = tmp / f"moving.{fmt.lower()}"
    frames = [Image.fromarray(COLOUR), Image.fromarray(COLOUR[::-1])]
    frames[0].save(path, fmt, save_all=True, append_images=frames[1:])
    return path


def forged_jpeg(tmp):
    """An 854-byte-class JPEG whose frame header claims 7000x7000 pixels."""
    import io

    buffer = io.BytesIO()
    Image.fromarray(COLOUR[:8, :8]).save(buffer, "JPEG")
    data = bytearray(buffer.getvalue())
    frame = data.index(b"\xff\xc0")
    data[frame + 5 : frame + 9] = (7000).to_bytes(2, "big") * 2
    return _bytes(tmp / "forged.jpg", bytes(data))


def strip_set(tmp, shape):
    folder = tmp / "strips"
    folder.mkdir()
    png(folder / "a.png", RNG.integers(0, 256, (*shape, 3), dtype=np.uint8))
    return folder


def dangling(tmp):
    link = tmp / "out.png"
    link.symlink_to(tmp / "nowhere" / "x.png")
    return link


def fifo(tmp, name="pipe.png"):
    import os

    os.mkfifo(tmp / name)
    return tmp / name


def gray_alpha(tmp):
    path = tmp / "ga.png"
    Image.fromarray(np.dstack([COLOUR[..., 0], COLOUR[..., 1]]), "LA").save(path)
    return path


def cut_exif_png(tmp):
    """A PNG whose eXIf chunk is cut short: Pillow warns of it, and nothing may reach the terminal."""
    exif = Image.Exif()
    exif[0x010F] = "Camera"
    import struct
    import zlib

    path = png(tmp / "cut.png", exif=exif.tobytes())
    data = path.read_bytes()
    kind = data.index(b"eXIf")
    length = struct.unpack(">I", data[kind - 4 : kind])[0]
    cut = data[kind + 4 : kind + 4 + length][:12]  # the TIFF header and half a directory
    chunk = struct.pack(">I", len(cut)) + b"eXIf" + cut + struct.pack(">I", zlib.crc32(b"eXIf" + cut))
    return _bytes(path, data[: kind - 4] + chunk + data[kind + 8 + length :])


def heic(tmp, orientation=6):
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp / "phone.heic"
    Image.fromarray(COLOUR).save(path, "HEIF", exif=exif.tobytes())
    return path


ROUND_3 = {
    "a BigTIFF to TIFF": (lambda t: ["denoise", str(bigtiff(t, bigtiff=True)), "--model", "median", "--sigma", "5",
                                     "-o", str(t / "out.tif")], 0, None, "out.tif"),
    "a one-row-per-strip TIFF to JPEG": (
        lambda t: ["denoise", str(bigtiff(t, rowsperstrip=1)), "--model", "median", "--sigma", "5",
                   "-o", str(t / "out.jpg")], 0, None, "out.jpg"),
    "a BigTIFF's PNG output denoised again": (denoised_again, 0, None, "b_denoised_denoised.png"),
    "an int16 TIFF": (lambda t: ["denoise", str(integer_tiff(t, "int16")), "--model", "median"], 2,
                      "int16 samples", None),
    "a uint32 TIFF": (lambda t: ["denoise", str(integer_tiff(t, "uint32")), "--model", "median"], 2,
                      "uint32 samples", None),
    "an animated WebP": (lambda t: ["denoise", str(animated(t, "WEBP")), "--model", "median", "--sigma", "5"], 0,
                         None, "only the first frame"),
    "an APNG": (lambda t: ["denoise", str(animated(t, "PNG")), "--model", "median", "--sigma", "5"], 0, None,
                "only the first frame"),
    "a JPEG whose header claims 49 MP": (lambda t: ["denoise", str(forged_jpeg(t)), "--model", "median"], 2,
                                         "truncated or forged", None),
    "evaluate on 8x8 images": (
        lambda t: ["evaluate", str(strip_set(t, (8, 8))), "--models", "median", "--sigmas", "25"], 0, None, "| — |"),
    "evaluate on 12000x8 images": (
        lambda t: ["evaluate", str(strip_set(t, (8, 12000))), "--models", "median", "--sigmas", "25"], 0, None,
        "| — |"),
    "a dangling link at -o": (lambda t: ["denoise", str(png(t / "a.png")), "--model", "median", "-o",
                                         str(dangling(t))], 2, "leads nowhere", None),
    "a 245-character name": (lambda t: ["denoise", str(png(t / ("n" * 241 + ".png"))), "--model", "median"], 2,
                             "too long", None),
    "a 238-character name, too long with its temporary name": (
        lambda t: ["denoise", str(png(t / ("n" * 234 + ".png"))), "--model", "median"], 2, "too long", None),
    "--tile 72 with the U-Net's grid of 16": (
        lambda t: ["denoise", str(png(t / "a.png")), "--model", "unet_real_int8", "--tile", "72"], 2, "grid of 16",
        None),
    "gray+alpha to BMP": (lambda t: ["denoise", str(gray_alpha(t)), "--model", "median", "--sigma", "5", "-o",
                                     str(t / "out.bmp")], 0, None, "out.bmp"),
    "/dev/zero as input": (lambda t: ["denoise", "/dev/zero", "--model", "median", "-o", str(t / "o.png")], 2,
                           "not a regular file", None),
    "a FIFO as input": (lambda t: ["denoise", str(fifo(t)), "--model", "median", "-o", str(t / "o.png")], 2,
                        "not a regular file", None),
    "a cut eXIf chunk": (lambda t: ["denoise", str(cut_exif_png(t)), "--model", "median", "--sigma", "5"], 0, None,
                         "cut_denoised.png"),
    "evaluate --csv onto a FIFO, with --overwrite": (
        lambda t: ["evaluate", str(colour_set(t)), "--models", "median", "--sigmas", "25", "--csv",
                   str(fifo(t, "t.csv")), "--overwrite"], 2, "not a regular file", None),
    "evaluate --csv onto /dev/null, with --overwrite": (
        lambda t: ["evaluate", str(colour_set(t)), "--models", "median", "--sigmas", "25", "--csv", "/dev/null",
                   "--overwrite"], 2, "not a regular file", None),
    "evaluate --csv onto a link, with --overwrite": (
        lambda t: ["evaluate", str(colour_set(t)), "--models", "median", "--sigmas", "25", "--csv",
                   str(_link(t / "t.csv", _existing(t / "kept.csv"))), "--overwrite"], 2, "not a regular file", None),
    "ray --summary onto a photo": (
        lambda t: ["denoise", str(png(t / "a.png")), "--model", "median", "--engine", "ray", "-o", str(t / "out"),
                   "--summary", str(png(t / "b.png"))], 2, "CSV", None),
    "ray --summary onto a folder": (
        lambda t: ["denoise", str(png(t / "a.png")), "--model", "median", "--engine", "ray", "-o", str(t / "out"),
                   "--summary", str(_folder(t / "sums.csv"))], 2, "folder", None),
    "a HEIC phone photo turned by its EXIF": (
        lambda t: ["denoise", str(heic(t)), "--model", "median", "--sigma", "5"], 0, None, "phone_denoised.png"),
}


def _link(link, target):
    link.symlink_to(target)
    return link


def _folder(path):
    path.mkdir()
    return path


CLI_ROWS.update(ROUND_3)


def snapshot(folder):
    return {p: p.read_bytes() for p in Path(folder).rglob("*") if p.is_file() and not p.is_symlink()}


@pytest.mark.parametrize("case", sorted(CLI_ROWS))
def test_hostile_command_lines(case, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    setup, status, error, output = CLI_ROWS[case]
    args = setup(tmp_path)
    before = snapshot(tmp_path)
    code = main([*args, "--quiet"] if args[0] == "denoise" else args)
    captured = capsys.readouterr()
    assert code == status, captured
    assert "Traceback" not in captured.err and "Warning" not in captured.err, captured.err
    if error is not None:
        lines = [line for line in captured.err.strip().splitlines() if line.startswith("error:")]
        assert lines and error in lines[0], captured.err
        if status == 2:
            assert len(captured.err.strip().splitlines()) == 1, captured.err
    if output is not None:
        assert output in captured.out, captured.out
    # Nothing that existed was changed, except what a run was asked to replace.
    after = snapshot(tmp_path)
    for path, data in before.items():
        if path.suffix != ".part":
            assert after.get(path) == data, path
    if status == 2:
        assert set(after) == set(before)


def test_a_resumed_batch_keeps_finished_outputs_and_clears_its_part_files(tmp_path, capsys):
    args = _killed_batch(tmp_path)
    finished = (tmp_path / "out" / "a_denoised.png").read_bytes()
    assert main([*args, "--quiet"]) == 0
    assert (tmp_path / "out" / "a_denoised.png").read_bytes() == finished
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a_denoised.png", "b_denoised.png"]
    assert main([*args[:-1], "--overwrite", "--resume", "--quiet"]) == 2  # the two contradict each other


def test_a_bad_file_among_good_ones_leaves_the_good_ones_written(tmp_path, capsys):
    setup = CLI_ROWS["a bad file among good ones"][0]
    assert main([*setup(tmp_path), "--quiet"]) == 1
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a_denoised.png", "b_denoised.png"]
    assert "1 of 3 files failed" in capsys.readouterr().err


def test_evaluate_overwrites_a_table_only_when_asked(tmp_path, capsys):
    folder = colour_set(tmp_path)
    table = _existing(tmp_path / "table.csv")
    assert main(["evaluate", str(folder), "--models", "median", "--sigmas", "25", "--csv", str(table),
                 "--overwrite", "--quiet"]) == 0
    assert table.read_text().startswith("model,dataset,level")


def test_a_16_bit_output_keeps_its_exif(tmp_path):
    from denoiser.io import encode_image, load_image

    exif = Image.Exif()
    exif[0x010F] = "TestCamera"
    pixels = RNG.random((16, 16, 3)).astype(np.float32)
    picture = load_image(encode_image(pixels, "PNG", bit_depth=16, exif=exif.tobytes()))
    assert picture.bit_depth == 16
    written = Image.Exif()
    written.load(picture.exif)
    assert written[0x010F] == "TestCamera"


LIBRARY_ROWS = {
    "nlm with a level map": (lambda img: denoise(img, load_runtime("nlm"), level=np.full(img.shape[:2], 10.0)),
                             "one noise level"),
    "nlm with a negative level": (lambda img: denoise(img, load_runtime("nlm"), level=-50), "between 0 and 255"),
    "tile=0": (lambda img: denoise(img, load_runtime("median"), level=5, tile=0), "tile"),
    "batch=-1": (lambda img: denoise(img, load_runtime("median"), level=5, batch=-1), "batch"),
    "a level map of the wrong shape (holds)": (
        lambda img: denoise(img, load_runtime("dncnn_real_int8"), level=np.ones((3, 3))), "map"),
}


@pytest.mark.parametrize("case", sorted(LIBRARY_ROWS))
def test_hostile_library_calls(case, astronaut):
    call, words = LIBRARY_ROWS[case]
    with pytest.raises(DenoiserError, match=words):
        call(astronaut[:32, :32])


def test_tiny_images_get_a_photo_estimate():
    from denoiser.metrics import estimate_photo_noise

    noisy = np.clip(0.5 + np.random.default_rng(0).normal(0, 0.05, (8, 8, 3)), 0, 1).astype(np.float32)
    assert estimate_photo_noise(noisy) > 0


@pytest.mark.parametrize("text, words", [("abc", "must be a whole number"), ("0", "must be a whole number"),
                                         ("-5", "must be a whole number")])
def test_a_bad_pixel_limit_is_named(monkeypatch, text, words):
    from denoiser.errors import ImageError
    from denoiser.io import max_pixels_from_environment

    monkeypatch.setenv("DENOISER_MAX_PIXELS", text)
    with pytest.raises(ImageError, match=words):
        max_pixels_from_environment()


def test_a_small_pixel_limit_speaks_in_pixels():
    from denoiser.errors import ImageError
    from denoiser.io import load_image

    with pytest.raises(ImageError, match=r"40x40 is 1,600 pixels, over the limit of 1,000 pixels"):
        load_image(_png_bytes(COLOUR[:40, :40]), max_pixels=1000)


def _png_bytes(pixels):
    import io

    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


INTEGER_OPTIONS = {
    "tile": lambda t, v: ["denoise", str(png(t / "a.png", COLOUR[:16, :16])), "--model", "median", "--sigma", "5",
                          "--tile", v, "-o", str(t / "out.png"), "--overwrite", "--quiet"],
    "batch": lambda t, v: ["denoise", str(png(t / "a.png", COLOUR[:16, :16])), "--model", "median", "--sigma", "5",
                           "--batch", v, "-o", str(t / "out.png"), "--overwrite", "--quiet"],
    "limit": lambda t, v: ["evaluate", str(_one_image_set(t)), "--models", "median", "--sigmas", "25",
                           "--limit", v, "--quiet"],
    "seed": lambda t, v: ["add-noise", str(png(t / "a.png", COLOUR[:16, :16])), "--seed", v,
                          "-o", str(t / "noisy.png"), "--overwrite"],
    "repeats": lambda t, v: ["bench", "--models", "median", "--size", "8", "--megapixels", "0", "--repeats", v],
    "size": lambda t, v: ["bench", "--models", "median", "--repeats", "1", "--megapixels", "0", "--size", v],
}


def _one_image_set(tmp):
    folder = tmp / "one"
    folder.mkdir(exist_ok=True)
    png(folder / "x.png", COLOUR[:16, :16])
    return folder


@pytest.mark.slow
@pytest.mark.parametrize("option", sorted(INTEGER_OPTIONS))
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=st.integers(min_value=-(2**70), max_value=2**70))
def test_any_integer_option_exits_cleanly_and_changes_no_input(option, value, tmp_path_factory, capsys):
    folder = tmp_path_factory.mktemp(option)
    args = INTEGER_OPTIONS[option](folder, str(value))
    inputs = {p: p.read_bytes() for p in folder.rglob("*.png") if "out" not in p.name and "noisy" not in p.name}
    code = main(args)
    captured = capsys.readouterr()
    assert code in (0, 2), captured
    assert "Traceback" not in captured.err
    if code == 2:
        assert len(captured.err.strip().splitlines()) == 1 and captured.err.startswith("error:"), captured.err
    assert all(path.read_bytes() == data for path, data in inputs.items())


def test_a_huge_file_is_refused_from_its_header_before_it_is_read(tmp_path, monkeypatch):
    from denoiser import io
    from denoiser.errors import ImageError

    path = sparse_float_tiff(tmp_path)
    monkeypatch.setattr(io, "_read_bytes", lambda source: pytest.fail("the whole file was read"))
    with pytest.raises(ImageError, match="over the limit"):
        io.load_image(path)
