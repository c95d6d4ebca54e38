import io

import numpy as np
import pytest
from PIL import Image

from denoiser.errors import DenoiserError, ImageError
from denoiser.io import encode_image, load_image, save_image, save_picture, to_float, to_integer


def png_bytes(array, mode=None, **options):
    buffer = io.BytesIO()
    Image.fromarray(array, mode).save(buffer, format=options.pop("format", "PNG"), **options)
    return buffer.getvalue()


def test_8bit_rgb_png_round_trip_is_lossless(rng, tmp_path):
    values = rng.integers(0, 256, (17, 23, 3), dtype=np.uint8)
    picture = load_image(png_bytes(values))
    assert picture.pixels.dtype == np.float32 and picture.pixels.shape == (17, 23, 3)
    assert picture.bit_depth == 8
    path = save_picture(picture, picture.pixels, tmp_path / "out.png")
    assert np.array_equal(np.asarray(Image.open(path)), values)


def test_16bit_gray_png_round_trip_keeps_all_bits(rng, tmp_path):
    values = rng.integers(0, 65536, (9, 11), dtype=np.uint16)
    path = tmp_path / "g16.png"
    Image.fromarray(values).save(path)
    picture = load_image(path)
    assert picture.bit_depth == 16 and picture.channels == 1
    out = save_picture(picture, picture.pixels, tmp_path / "back.png")
    assert np.array_equal(np.asarray(Image.open(out)).astype(np.uint16), values)


def test_16bit_colour_png_and_tiff_round_trip(rng, tmp_path):
    values = rng.integers(0, 65536, (8, 10, 3), dtype=np.uint16)
    pixels = values.astype(np.float32) / 65535
    for suffix in (".png", ".tif"):
        path = save_image(pixels, tmp_path / f"c16{suffix}", bit_depth=16)
        picture = load_image(path)
        assert picture.bit_depth == 16
        assert np.array_equal(np.rint(picture.pixels * 65535).astype(np.uint16), values), suffix


def test_rgba_alpha_is_set_aside_and_restored(rng, tmp_path):
    values = rng.integers(0, 256, (6, 7, 4), dtype=np.uint8)
    picture = load_image(png_bytes(values, "RGBA"))
    assert picture.channels == 3
    assert np.array_equal(np.rint(picture.alpha * 255).astype(np.uint8), values[..., 3])
    out = save_picture(picture, picture.pixels, tmp_path / "a.png")
    assert np.array_equal(np.asarray(Image.open(out)), values)


def test_palette_gray_la_cmyk_and_bilevel_modes(rng):
    gray = rng.integers(0, 256, (5, 6), dtype=np.uint8)
    assert load_image(png_bytes(gray, "L")).channels == 1
    la = load_image(png_bytes(np.dstack([gray, gray]), "LA"))
    assert la.channels == 1 and la.alpha is not None
    palette = Image.fromarray(rng.integers(0, 256, (5, 6, 3), dtype=np.uint8)).convert("P")
    buffer = io.BytesIO()
    palette.save(buffer, format="PNG")
    assert load_image(buffer.getvalue()).channels == 3
    cmyk = Image.fromarray(rng.integers(0, 256, (5, 6, 3), dtype=np.uint8)).convert("CMYK")
    buffer = io.BytesIO()
    cmyk.save(buffer, format="JPEG")
    assert load_image(buffer.getvalue()).channels == 3
    buffer = io.BytesIO()
    Image.fromarray(gray > 128).save(buffer, format="BMP")
    assert set(np.unique(load_image(buffer.getvalue()).pixels)) <= {0.0, 1.0}


@pytest.mark.parametrize("fmt", ["JPEG", "TIFF", "WEBP", "BMP"])
def test_every_format_reads(fmt, rng):
    values = rng.integers(0, 256, (12, 9, 3), dtype=np.uint8)
    picture = load_image(png_bytes(values, format=fmt))
    assert picture.pixels.shape == (12, 9, 3) and picture.format == fmt


def test_a_cameras_mpo_jpeg_is_its_first_image_with_no_note_of_frames():
    """Nikon and Fujifilm cameras save MPO: the photo, then its small previews."""
    photo = np.full((24, 32, 3), (200, 40, 90), np.uint8)
    preview = np.zeros((12, 16, 3), np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(photo).save(buffer, format="MPO", save_all=True, append_images=[Image.fromarray(preview)])
    assert Image.open(io.BytesIO(buffer.getvalue())).n_frames == 2
    picture = load_image(buffer.getvalue())
    assert picture.format == "JPEG" and picture.pixels.shape == (24, 32, 3) and picture.notes == ()
    assert np.abs(to_integer(picture.pixels).astype(int) - photo).max() <= 3  # JPEG's rounding of a flat colour


def test_exif_orientation_is_applied(rng):
    values = rng.integers(0, 256, (4, 6, 3), dtype=np.uint8)
    im = Image.fromarray(values)
    exif = im.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    buffer = io.BytesIO()
    im.save(buffer, format="PNG", exif=exif)
    picture = load_image(buffer.getvalue())
    assert picture.pixels.shape == (6, 4, 3)
    expected = np.rot90(values, k=-1)
    assert np.array_equal(np.rint(picture.pixels * 255).astype(np.uint8), expected)


def test_icc_profile_and_exif_survive_png_and_jpeg(rng, tmp_path):
    from PIL import ImageCms

    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    im = Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
    exif = im.getexif()
    exif[0x010F] = "TestCam"
    buffer = io.BytesIO()
    im.save(buffer, format="PNG", icc_profile=icc, exif=exif)
    picture = load_image(buffer.getvalue())
    for name in ("o.png", "o.jpg"):
        out = Image.open(save_picture(picture, picture.pixels, tmp_path / name))
        assert out.info.get("icc_profile") == icc
        assert out.getexif().get(0x010F) == "TestCam"


def test_jpeg_quality_changes_size(astronaut):
    small = encode_image(astronaut, "JPEG", quality=30)
    large = encode_image(astronaut, "JPEG", quality=95)
    assert len(small) < len(large)


BAD_FILES = {
    "empty": b"",
    "text named png": b"this is not an image, just some text\n" * 4,
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_files_raise_image_error(name):
    with pytest.raises(ImageError):
        load_image(BAD_FILES[name])


def test_truncated_file_raises_image_error(rng):
    data = png_bytes(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
    with pytest.raises(ImageError, match="truncated or corrupt"):
        load_image(data[: len(data) // 2])


def test_zero_sized_image_raises_image_error():
    import struct
    import zlib

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 0, 5, 8, 2, 0, 0, 0)) + chunk(b"IEND", b"")
    with pytest.raises(ImageError):
        load_image(data)


def test_pixel_limit_stops_decompression_bombs(rng):
    data = png_bytes(np.zeros((100, 100), np.uint8))
    with pytest.raises(ImageError, match="over the limit"):
        load_image(data, max_pixels=5000)


def test_missing_path_and_unsupported_format(tmp_path):
    with pytest.raises(ImageError, match="no such file"):
        load_image(tmp_path / "nope.png")
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buffer, format="GIF")
    with pytest.raises(ImageError, match="not supported"):
        load_image(buffer.getvalue())
    assert issubclass(ImageError, DenoiserError)


def test_unknown_output_suffix_is_an_error(astronaut, tmp_path):
    with pytest.raises(ImageError):
        save_image(astronaut, tmp_path / "out.xyz")


def test_16bit_rgba_png_keeps_alpha_and_depth(rng, tmp_path):
    values = rng.integers(0, 65536, (5, 6, 3), dtype=np.uint16)
    alpha = rng.integers(0, 65536, (5, 6), dtype=np.uint16)
    path = save_image(values.astype(np.float32) / 65535, tmp_path / "a16.png", bit_depth=16,
                      alpha=alpha.astype(np.float32) / 65535)
    picture = load_image(path)
    assert picture.bit_depth == 16
    assert np.array_equal(np.rint(picture.pixels * 65535).astype(np.uint16), values)
    assert np.array_equal(np.rint(picture.alpha * 65535).astype(np.uint16), alpha)


@pytest.mark.parametrize("dtype, top", [(np.uint8, 255), (np.uint16, 65535)])
def test_integer_samples_become_the_nearest_float_of_k_over_top_and_come_back(dtype, top):
    samples = np.arange(top + 1, dtype=dtype)
    values = to_float(samples)
    assert values.dtype == np.float32
    np.testing.assert_array_equal(values, (samples / np.float64(top)).astype(np.float32))
    np.testing.assert_array_equal(to_integer(values, 8 if top == 255 else 16), samples)


def test_values_just_under_a_half_level_round_down():
    # The largest float32 below (k + 0.5) / top must give k, for every level. A product
    # taken in float32 rounds one of them (a 16-bit level) up to k + 0.5 and on to k + 1.
    for bit_depth, top in ((8, 255), (16, 65535)):
        levels = np.arange(top, dtype=np.float64)
        below = np.nextafter(((levels + 0.5) / top).astype(np.float32), np.float32(0))
        below = np.where(below.astype(np.float64) * top < levels + 0.5, below, np.nextafter(below, np.float32(0)))
        np.testing.assert_array_equal(to_integer(below[:, None, None], bit_depth)[:, 0, 0], levels)


def test_loaded_pixels_are_exactly_the_conversion_of_the_file_samples(rng):
    samples = rng.integers(0, 256, (9, 11, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(samples).save(buffer, format="PNG")
    np.testing.assert_array_equal(load_image(buffer.getvalue()).pixels, to_float(samples))


def test_float_samples_are_refused():
    with pytest.raises(ValueError, match="uint8 or uint16"):
        to_float(np.zeros((2, 2), np.float32))


def srgb_profile():
    from PIL import ImageCms

    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def test_16bit_colour_png_keeps_its_icc_profile(rng, tmp_path):
    pixels = rng.integers(0, 65536, (12, 17, 3)).astype(np.float32) / 65535
    profile = srgb_profile()
    save_image(pixels, tmp_path / "p.png", bit_depth=16, icc_profile=profile)
    back = load_image(tmp_path / "p.png")
    assert back.bit_depth == 16 and back.icc_profile == profile
    np.testing.assert_array_equal(back.pixels, pixels)


def test_16bit_gray_and_alpha_stays_gray_and_alpha(rng, tmp_path):
    gray = rng.integers(0, 65536, (9, 11, 1)).astype(np.float32) / 65535
    alpha = rng.integers(0, 65536, (9, 11)).astype(np.float32) / 65535
    save_image(gray, tmp_path / "la.png", bit_depth=16, alpha=alpha)
    back = load_image(tmp_path / "la.png")
    assert back.bit_depth == 16 and back.channels == 1
    np.testing.assert_array_equal(back.pixels, gray)
    np.testing.assert_array_equal(back.alpha, alpha)


@pytest.mark.parametrize("shape", [(10, 12), (10, 12, 3)])
def test_float_tiffs_in_0_1_are_read_at_their_values(shape, rng, tmp_path):
    import tifffile

    values = rng.random(shape).astype(np.float32)
    tifffile.imwrite(tmp_path / "f.tif", values, photometric="rgb" if len(shape) == 3 else "minisblack")
    back = load_image(tmp_path / "f.tif")
    assert back.bit_depth == 16 and back.pixels.shape == (10, 12, len(shape) == 3 and 3 or 1)
    np.testing.assert_allclose(back.pixels, values.reshape(back.pixels.shape), atol=0.5 / 65535)


def test_float_tiffs_on_another_scale_are_refused_with_their_range(tmp_path):
    import tifffile

    tifffile.imwrite(tmp_path / "f.tif", np.linspace(20, 220, 100, dtype=np.float32).reshape(10, 10))
    with pytest.raises(ImageError, match="run from 20 to 220"):
        load_image(tmp_path / "f.tif")
