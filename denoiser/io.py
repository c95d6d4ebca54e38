"""Reading and writing images. The only place that knows about uint8, 16-bit,
palettes, CMYK, alpha and EXIF: everything else sees float32 HWC in [0, 1].

Gray images stay one channel; colour images are RGB. An alpha channel is set
aside on reading and can be put back unchanged on writing.
"""

import fcntl
import io as _io
import logging
import os
import struct
import tempfile
import warnings
import zlib
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import cv2
import numpy as np
import tifffile
from PIL import Image, UnidentifiedImageError
from pillow_heif import register_heif_opener

from .errors import ImageError

DEFAULT_MAX_PIXELS = 50_000_000
# Every format that is written, with its file-name suffixes, the one it is written with first.
SUFFIXES = {"PNG": (".png",), "JPEG": (".jpg", ".jpeg"), "TIFF": (".tif", ".tiff"), "WEBP": (".webp",), "BMP": (".bmp",)}
WRITE_FORMATS = {fmt: suffixes[0] for fmt, suffixes in SUFFIXES.items()}
# What phones save (HEIC, through pillow-heif; AVIF, which Pillow reads itself) is read,
# and its result written as PNG or another format above.
READ_ONLY_SUFFIXES = {"HEIF": (".heic", ".heif"), "AVIF": (".avif",)}
READ_FORMATS = {*SUFFIXES, *READ_ONLY_SUFFIXES, "MPO"}
READ_FORMAT_WORDS = "PNG, JPEG, TIFF, WebP, BMP, HEIC or AVIF"
IMAGE_SUFFIXES = {suffix for suffixes in (*SUFFIXES.values(), *READ_ONLY_SUFFIXES.values()) for suffix in suffixes}
register_heif_opener()
# The pixel limit is ours (DEFAULT_MAX_PIXELS, DENOISER_MAX_PIXELS), checked from the
# header; Pillow's own guard would refuse what a person allowed, in other words.
Image.MAX_IMAGE_PIXELS = None
SIXTEEN_BIT = {"PNG", "TIFF"}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_EXIF_ORIENTATION = 0x0112


@dataclass
class Picture:
    """Decoded pixels plus what is needed to write them back faithfully."""

    pixels: np.ndarray
    alpha: np.ndarray | None = None
    bit_depth: int = 8
    format: str = "PNG"
    icc_profile: bytes | None = None
    exif: bytes | None = None
    # A multi-page TIFF's page count: only the first page is read.
    pages: int = 1
    # What was read otherwise than the file holds (the first frame of an animation,
    # damaged metadata left out), in words for the person: the commands and the app show them.
    notes: tuple[str, ...] = ()
    # The quality a JPEG's luminance table says (`jpeg_quality`); None for other formats.
    jpeg_quality: int | None = None

    @property
    def height(self):
        return self.pixels.shape[0]

    @property
    def width(self):
        return self.pixels.shape[1]

    @property
    def channels(self):
        return self.pixels.shape[2]


def _read_bytes(source):
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source), "upload"
    if hasattr(source, "read"):
        return source.read(), getattr(source, "name", "upload")
    path = Path(source)
    if not path.exists():
        raise ImageError(f"{path}: no such file")
    if path.is_dir():
        raise ImageError(f"{path} is a folder, not an image")
    if not path.is_file():
        # /dev/zero never ends, and a pipe may never answer.
        raise ImageError(f"{path} is not a regular file (a device or a pipe), not an image")
    return path.read_bytes(), path.name


def _orient(array, orientation):
    """Applies an EXIF orientation (1-8) to an HW or HWC array."""
    ops = {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: np.swapaxes(a, 0, 1),
        6: lambda a: np.swapaxes(a, 0, 1)[:, ::-1],
        7: lambda a: np.swapaxes(a, 0, 1)[::-1, ::-1],
        8: lambda a: np.swapaxes(a, 0, 1)[::-1],
    }
    return np.ascontiguousarray(ops[orientation](array)) if orientation in ops else array


def _sixteen_bit(raw):
    """Decodes 16-bit PNG/TIFF with OpenCV, which keeps all 16 bits of colour images.
    A gray+alpha PNG, which Pillow and OpenCV both widen to colour, stays gray."""
    array = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_UNCHANGED)
    if array is None or array.dtype != np.uint16:
        return None
    if array.ndim == 2:
        return array[..., None], None
    if _png_colour_type(raw) == 4:
        return array[..., :1], array[..., 3]
    if array.shape[2] == 4:
        rgba = cv2.cvtColor(array, cv2.COLOR_BGRA2RGBA)
        return rgba[..., :3], rgba[..., 3]
    return cv2.cvtColor(array, cv2.COLOR_BGR2RGB), None


def _eight_bit(im):
    """PIL image of any mode -> (uint8 or uint16 HWC pixels, alpha or None)."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        return np.asarray(im, dtype=np.uint16)[..., None], None
    if im.mode == "I":
        values = np.asarray(im)
        return np.clip(values, 0, 65535).astype(np.uint16)[..., None], None
    if im.mode == "F":
        values = np.asarray(im)
        return np.rint(np.clip(values, 0.0, 1.0) * 65535).astype(np.uint16)[..., None], None
    if im.mode in ("P", "PA"):
        im = im.convert("RGBA" if "transparency" in im.info or im.mode == "PA" else "RGB")
    if "transparency" in im.info and im.mode in ("1", "L", "RGB"):
        # A PNG's tRNS chunk: one value or colour that is transparent, which is alpha.
        im = im.convert("LA" if im.mode in ("1", "L") else "RGBA")
    if im.mode == "1":
        im = im.convert("L")
    if im.mode == "LA":
        la = np.asarray(im)
        return la[..., :1], la[..., 1]
    if im.mode == "L":
        return np.asarray(im)[..., None], None
    if im.mode == "RGBA":
        rgba = np.asarray(im)
        return rgba[..., :3], rgba[..., 3]
    return np.asarray(im.convert("RGB")), None


def load_image(source: str | os.PathLike | bytes | BinaryIO, *, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> Picture:
    """Reads a PNG, JPEG, TIFF, WebP, BMP, HEIC or AVIF file (path, bytes or file object).

    Returns a Picture whose pixels are float32 HWC in [0, 1] with 1 or 3 channels.
    Raises ImageError with a readable message for anything it cannot use.
    """
    if isinstance(source, (str, os.PathLike)):
        _check_header(Path(source), max_pixels)
    raw, name = _read_bytes(source)
    if not raw:
        raise ImageError(f"{name}: the file is empty")
    tiff = _tiff_beyond_pillow(raw, name, max_pixels)
    if tiff is not None:
        pixels, alpha, icc, pages = tiff
        return Picture(to_float(pixels), None if alpha is None else to_float(alpha), 16, "TIFF", icc, pages=pages,
                       notes=_frame_notes("TIFF", pages))
    try:
        with _quiet():
            im = Image.open(_io.BytesIO(raw))
            fmt = "JPEG" if im.format == "MPO" else im.format
            if fmt not in READ_FORMATS:
                raise ImageError(f"{name}: {im.format} images are not supported; use {READ_FORMAT_WORDS}")
            width, height = im.size
            if width == 0 or height == 0:
                raise ImageError(f"{name}: the image has no pixels ({width}x{height})")
            _check_pixel_count(name, width, height, max_pixels)
            _check_jpeg_data(name, fmt, width, height, len(raw))
            # A camera's MPO holds the photo and its own small previews, not frames of an
            # animation: nothing of the photo is left out.
            pages = 1 if im.format == "MPO" else getattr(im, "n_frames", 1)
            im.load()
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError(f"{name}: not an image, or a format that is not supported") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageError(f"{name}: the file is truncated or corrupt ({exc})") from None

    icc = im.info.get("icc_profile") or None
    quality = jpeg_quality(getattr(im, "quantization", None)) if fmt == "JPEG" else None
    orientation, exif_bytes, exif_notes = _metadata(im, fmt)
    if im.mode == "CMYK":
        icc = None  # a CMYK profile no longer describes the RGB pixels we return

    decoded = _sixteen_bit(raw) if _colour_sixteen_bit(raw, im, fmt) else None
    pixels, alpha = decoded if decoded is not None else _eight_bit(im)
    del im
    bit_depth = 16 if pixels.dtype == np.uint16 else 8
    pixels = to_float(_orient(pixels, orientation))
    if alpha is not None:
        alpha = to_float(_orient(alpha, orientation))
    return Picture(pixels, alpha, bit_depth, fmt, icc, exif_bytes, pages, (*_frame_notes(fmt, pages), *exif_notes),
                   quality)


# The JPEG standard's luminance table (ITU-T T.81, Annex K), which libjpeg scales by
# quality; only its sum is compared, which does not depend on the order a reader lists
# the table in.
_STANDARD_LUMINANCE = (
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99)


def _libjpeg_sum(quality):
    scale = 5000 // quality if quality < 50 else 200 - 2 * quality
    return sum(min(255, max(1, (value * scale + 50) // 100)) for value in _STANDARD_LUMINANCE)


def jpeg_quality(tables) -> int | None:
    """The libjpeg quality (1-100) whose luminance table is closest to a JPEG's first
    table (Pillow's `quantization`); None without tables. A camera's own tables read
    as the nearest libjpeg quality.

    Examples
    --------
    >>> from denoiser.io import jpeg_quality
    >>> jpeg_quality({0: [1] * 64})
    100
    >>> jpeg_quality(None) is None
    True
    """
    if not tables:
        return None
    total = sum(tables[min(tables)])
    return min(range(1, 101), key=lambda quality: (abs(_libjpeg_sum(quality) - total), -quality))


def _frame_notes(fmt, frames):
    """What a person is told of a file of several pages (TIFF) or frames (an animation)."""
    if frames <= 1:
        return ()
    if fmt == "TIFF":
        return (f"it holds {frames} pages; only the first is read",)
    return (f"it is animated ({frames} frames); only the first frame is read",)


# The EXIF a TIFF's first directory carries beside its structure (strip offsets, tile
# sizes, sample formats, which describe the original file and break any other): the
# descriptive tags, and the Exif and GPS directories.
DESCRIPTIVE_TIFF_TAGS = (0x010E, 0x010F, 0x0110, 0x0112, 0x0131, 0x0132, 0x013B, 0x8298)
SUB_DIRECTORIES = (0x8769, 0x8825)


def _metadata(im, fmt):
    """(EXIF orientation, the EXIF to write back with orientation 1 or None, notes).
    Damaged EXIF is left out with a note: it must never cost the photo."""
    try:
        with _quiet():
            exif = im.getexif()
            if fmt == "TIFF":
                kept = Image.Exif()
                for tag in DESCRIPTIVE_TIFF_TAGS:
                    if tag in exif:
                        kept[tag] = exif[tag]
                for tag in SUB_DIRECTORIES:
                    directory = exif.get_ifd(tag)
                    if directory:
                        kept[tag] = dict(directory)
                exif = kept
            orientation = exif.get(_EXIF_ORIENTATION, 1)
            if _EXIF_ORIENTATION in exif:
                exif[_EXIF_ORIENTATION] = 1
            written = exif.tobytes() if len(exif) else None
    except Exception:  # noqa: BLE001  Pillow's EXIF parser raises many kinds on a damaged block
        return 1, None, ("its EXIF metadata is damaged and was left out",)
    return (orientation if orientation in range(1, 9) else 1), written, ()


def _check_jpeg_data(name, fmt, width, height, size):
    """Refuses a JPEG whose header claims far more pixels than its data can hold: even a
    flat image needs some bits for each 8x8 block, and a forged 854-byte file that claims
    7000x7000 would otherwise decode as 49 MP of gray."""
    blocks = -(-width // 8) * -(-height // 8)
    if fmt == "JPEG" and size * 16 < blocks:
        raise ImageError(f"{name}: the JPEG header claims {width}x{height} pixels, but the file holds only "
                         f"{size:,} bytes: it is truncated or forged")


@contextmanager
def _quiet():
    """Keeps the decoders' own complaints about a forged file (Pillow's warnings,
    tifffile's log lines) off the terminal: the error raised says what is wrong."""
    logger = logging.getLogger("tifffile")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def _check_header(path, max_pixels):
    """Refuses a file over `max_pixels` from its header, before the file is read whole:
    a sparse 720 MB TIFF took the process to 980 MB when the size was checked after
    reading. A file whose header cannot be read is left to the full read to explain."""
    if not path.is_file():
        return
    try:
        with _quiet(), open(path, "rb") as handle:
            if handle.read(4) in (b"II*\0", b"MM\0*"):
                with tifffile.TiffFile(path) as tif:
                    width, height = tif.pages[0].imagewidth, tif.pages[0].imagelength
            else:
                with Image.open(path) as im:
                    width, height = im.size
    except (OSError, ValueError, SyntaxError, EOFError, IndexError, tifffile.TiffFileError):
        return
    _check_pixel_count(path.name, width, height, max_pixels)


def _pixel_count(count):
    return f"{count:,} pixels"


def _check_pixel_count(name, width, height, max_pixels):
    """Refuses an image over `max_pixels` from its header, before decoding it."""
    if width * height > max_pixels:
        raise ImageError(f"{name}: {width}x{height} is {_pixel_count(width * height)}, "
                         f"over the limit of {_pixel_count(max_pixels)}")


MAX_PIXELS_VARIABLE = "DENOISER_MAX_PIXELS"


def max_pixels_from_environment() -> int:
    """The pixel limit that $DENOISER_MAX_PIXELS sets, or DEFAULT_MAX_PIXELS.

    Raises
    ------
    ImageError
        When the variable is not a whole number of at least one pixel.
    """
    text = os.environ.get(MAX_PIXELS_VARIABLE)
    if text is None:
        return DEFAULT_MAX_PIXELS
    try:
        value = int(text.strip().replace("_", ""))
    except ValueError:
        value = 0
    if value < 1:
        raise ImageError(f"{MAX_PIXELS_VARIABLE} must be a whole number of pixels (such as 50000000), got {text!r}")
    return value


def _png_colour_type(raw):
    return raw[25] if raw[:8] == PNG_SIGNATURE and len(raw) > 25 else None


def _tiff_beyond_pillow(raw, name, max_pixels):
    """(pixels, alpha, ICC profile, pages) of a TIFF that Pillow clips or refuses: float
    samples, or 16-bit gray+alpha; None for any other file. Float values must lie in
    [0, 1]: no other range can be guessed."""
    if raw[:4] not in (b"II*\0", b"MM\0*"):
        return None
    try:
        with _quiet(), tifffile.TiffFile(_io.BytesIO(raw)) as tif:
            page = tif.pages[0]
            pages = len(tif.pages)
            kind = np.dtype(page.dtype).kind
            if kind == "i" or (kind == "u" and np.dtype(page.dtype).itemsize > 2):
                raise ImageError(f"{name}: a TIFF of {np.dtype(page.dtype).name} samples has no range that can be "
                                 "read without guessing; save it as 8- or 16-bit unsigned, or as float in 0 to 1")
            if kind != "f" and not (page.dtype == np.uint16 and page.samplesperpixel == 2):
                return None
            icc = page.tags[34675].value if 34675 in page.tags else None
            orientation = int(page.tags[_EXIF_ORIENTATION].value) if _EXIF_ORIENTATION in page.tags else 1
            _check_pixel_count(name, page.imagewidth, page.imagelength, max_pixels)
            values = _orient(page.asarray(), orientation)
    except ImageError:
        raise
    except (tifffile.TiffFileError, ValueError, OSError):
        return None
    if kind != "f":
        return values[..., :1], values[..., 1], icc, pages
    values = values.astype(np.float32)
    values = values[..., None] if values.ndim == 2 else values
    if values.ndim != 3 or values.shape[2] not in (1, 2, 3, 4):
        raise ImageError(f"{name}: a float TIFF of shape {values.shape} is not a gray or colour image")
    if not np.isfinite(values).all():
        raise ImageError(f"{name}: the float TIFF holds NaN or infinite values")
    low, high = float(values.min()), float(values.max())
    if low < 0 or high > 1:
        raise ImageError(f"{name}: the float TIFF's values run from {low:g} to {high:g}; "
                         "only float images in the range 0 to 1 can be read")
    samples = np.rint(values * 65535).astype(np.uint16)
    if samples.shape[2] in (2, 4):
        return samples[..., :-1], samples[..., -1], icc, pages
    return samples, None, icc, pages


def _colour_sixteen_bit(raw, im, fmt):
    """Whether a colour PNG or TIFF holds 16 bits per sample, which Pillow would cut to 8."""
    if im.mode not in ("RGB", "RGBA"):
        return False
    if fmt == "PNG":
        return len(raw) > 24 and raw[24] == 16  # the bit depth field of the IHDR chunk
    if fmt == "TIFF":
        bits = im.tag_v2.get(258, (8,))
        return 16 in (bits if isinstance(bits, tuple) else (bits,))
    return False


def to_float(samples: np.ndarray) -> np.ndarray:
    """uint8 or uint16 -> float32 in [0, 1]: k / 255 or k / 65535, correctly rounded.

    Every integer-to-float conversion goes through here. Multiplying by a rounded
    1 / 255 instead gives a different float32 for half of the 256 values; through a
    model that rounds its activations to int8, that moved a PSNR by a few 1e-4 dB.
    """
    samples = np.asarray(samples)
    if samples.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"expected uint8 or uint16 samples, got {samples.dtype}")
    values = samples.astype(np.float32)
    values /= np.float32(np.iinfo(samples.dtype).max)
    return values


def to_integer(image: np.ndarray, bit_depth: int = 8) -> np.ndarray:
    """Float [0, 1] -> uint8 or uint16: clipped and rounded to the nearest level.

    The one conversion to integers, and the evaluation protocol's (`metrics.quantize`).
    The product is taken in float64, where a float32 value times 65535 is exact, so
    a value just under a half level never rounds up."""
    if bit_depth not in (8, 16):
        raise ValueError(f"bit_depth must be 8 or 16, got {bit_depth}")
    top, dtype = (255, np.uint8) if bit_depth == 8 else (65535, np.uint16)
    image = np.asarray(image)
    out = np.empty(image.shape, dtype)
    # Row strips: no full-size float64 temporaries for a large photo.
    for start in range(0, image.shape[0], 64):
        rows = np.clip(image[start : start + 64].astype(np.float64), 0.0, 1.0)
        out[start : start + 64] = np.rint(rows * top)
    return out


def format_for_path(path: str | os.PathLike) -> str:
    """The format ("PNG", "JPEG", ...) that `path`'s suffix names.

    Raises
    ------
    ImageError
        For a suffix of no format that can be written.
    """
    suffix = Path(path).suffix.lower()
    for fmt, suffixes in SUFFIXES.items():
        if suffix in suffixes:
            return fmt
    raise ImageError(f"{path}: cannot tell the format from the suffix; use "
                     f"{', '.join(WRITE_FORMATS.values())}")


def images_in(folder: str | os.PathLike) -> list[Path]:
    """The files in the folder `folder` whose suffix is an image format's, by name."""
    return sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def list_images(folder: str | os.PathLike) -> list[Path]:
    """The image files in `folder`, by name.

    Raises
    ------
    ImageError
        If `folder` is not a folder, or holds no images.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ImageError(f"not a folder of images: {folder}")
    files = images_in(folder)
    if not files:
        raise ImageError(f"no images in {folder}")
    return files


def encode_image(pixels: np.ndarray, fmt: str = "PNG", *, bit_depth: int = 8, alpha: np.ndarray | None = None,
                 quality: int = 95, icc_profile: bytes | None = None, exif: bytes | None = None) -> bytes:
    """Float HWC image in [0, 1] -> the bytes of an image file.

    PNG and WebP are lossless; 16 bits are kept for PNG and TIFF only. The ICC
    profile and EXIF are written where the format and depth allow it.
    """
    fmt = fmt.upper()
    if fmt not in WRITE_FORMATS:
        raise ImageError(f"cannot write {fmt}; choose one of {sorted(WRITE_FORMATS)}")
    pixels = np.asarray(pixels, np.float32)
    if pixels.ndim != 3 or pixels.shape[2] not in (1, 3):
        raise ImageError(f"expected an HWC image with 1 or 3 channels, got shape {pixels.shape}")
    depth = bit_depth if fmt in SIXTEEN_BIT else 8
    if fmt == "JPEG":
        alpha = None
    values = to_integer(pixels, depth)
    if alpha is not None:
        values = np.concatenate([values, to_integer(alpha, depth)[..., None]], axis=-1)
    if fmt == "BMP" and values.shape[2] == 2:
        values = values[..., [0, 0, 0, 1]]  # BMP holds no gray+alpha: the same pixels as RGBA
    gray = values.shape[2] in (1, 2)

    if depth == 16 and fmt == "TIFF":
        buffer = _io.BytesIO()
        tifffile.imwrite(buffer, values.squeeze(-1) if values.shape[2] == 1 else values,
                         photometric="minisblack" if gray else "rgb",
                         extrasamples=["unassalpha"] if alpha is not None else None, iccprofile=icc_profile)
        return buffer.getvalue()
    if depth == 16 and (not gray or alpha is not None):
        # Pillow cannot write 16-bit colour or gray+alpha PNG.
        return _png16(values, icc_profile, exif)
    if depth == 16:
        im = Image.fromarray(values[..., 0].astype("<u2"))
    else:
        mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[values.shape[2]]
        im = Image.fromarray(values.squeeze(-1) if mode == "L" else values, mode)
    options: dict[str, Any] = {}
    if icc_profile:
        options["icc_profile"] = icc_profile
    if exif and fmt in ("JPEG", "PNG", "TIFF", "WEBP"):
        options["exif"] = exif
    if fmt == "JPEG":
        options.update(quality=int(quality), subsampling=0 if quality >= 90 else 2)
    if fmt == "WEBP":
        # `exact` keeps the colour under fully transparent pixels, which WebP may change.
        options.update(lossless=True, exact=True)
    buffer = _io.BytesIO()
    im.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png16(values, icc_profile=None, exif=None):
    """A 16-bit PNG of uint16 HWC `values` (gray+alpha, RGB or RGBA), with its ICC
    profile and EXIF. Every row uses the Up filter: neighbouring rows of a photo are alike."""
    height, width, channels = values.shape
    colour_type = {2: 4, 3: 2, 4: 6}[channels]
    rows = np.ascontiguousarray(values, ">u2").view(np.uint8).reshape(height, width * channels * 2)
    up = rows.copy()
    up[1:] -= rows[:-1]  # modulo 256, as the filter is defined
    scanlines = np.concatenate([np.full((height, 1), 2, np.uint8), up], axis=1)
    chunks = [_png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 16, colour_type, 0, 0, 0))]
    if icc_profile:
        chunks.append(_png_chunk(b"iCCP", b"icc\0\0" + zlib.compress(icc_profile)))
    if exif:
        # The eXIf chunk holds the TIFF structure alone, without JPEG's "Exif" marker.
        chunks.append(_png_chunk(b"eXIf", exif[6:] if exif.startswith(b"Exif\0\0") else exif))
    chunks.append(_png_chunk(b"IDAT", zlib.compress(scanlines.tobytes(), 6)))
    chunks.append(_png_chunk(b"IEND", b""))
    return PNG_SIGNATURE + b"".join(chunks)


def save_image(pixels: np.ndarray, path: str | os.PathLike, *, fmt: str | None = None, overwrite: bool = True,
               **options: Any) -> str | os.PathLike:
    """Writes an image; the format comes from `fmt` or the file's suffix. Without
    `overwrite`, a file already at `path` is kept (`write_atomically`)."""
    path = Path(path)
    write_atomically(path, encode_image(pixels, fmt or format_for_path(path), **options), overwrite=overwrite)
    return path


# Temporary files beside an output: PART_PREFIX + its name + "." + 8 random characters + PART_SUFFIX.
PART_PREFIX, PART_SUFFIX = ".", ".part"
PART_EXTRA = len(PART_PREFIX) + 1 + 8 + len(PART_SUFFIX)


def write_atomically(path: str | os.PathLike, data: bytes, *, overwrite: bool = True) -> None:
    """Writes `data` to a temporary file beside `path` and renames it into place, so
    that a failed or killed write (a full disk, a file-size limit) leaves any earlier
    file whole. Without `overwrite` the rename is exclusive (a hard link): a file
    that appeared at `path` while the work ran is kept, and this write refused. The
    temporary file is locked while it lives, so that another run's clean-up of killed
    writes (`outputs.remove_stale_parts`) leaves it alone.

    Raises
    ------
    ImageError
        When the file cannot be written, or (without `overwrite`) exists; the
        temporary file is removed.
    """
    path = Path(path)
    temp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f"{PART_PREFIX}{path.name}.", suffix=PART_SUFFIX)
        with os.fdopen(fd, "wb") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(temp, 0o666 & ~umask)  # mkstemp's files are private; outputs are not
            if overwrite:
                os.replace(temp, path)
            else:
                _link_exclusively(temp, path)
    except OSError as exc:
        if temp is not None and os.path.exists(temp):
            os.unlink(temp)
        raise ImageError(f"{path}: could not write the file ({exc.strerror or exc})") from None


def _link_exclusively(temp, path):
    """Renames `temp` to `path` only where no file is at `path`, as one step (a hard link)."""
    try:
        os.link(temp, path)
    except FileExistsError:
        raise ImageError(f"{path} appeared while this run worked: it was kept, and this result not written") from None
    finally:
        os.unlink(temp)


def drops_alpha(picture: Picture, path: str | os.PathLike, fmt: str | None = None) -> bool:
    """Whether writing `picture` to `path` (as `fmt`, or the format its suffix names)
    loses its alpha channel: JPEG holds none."""
    return picture.alpha is not None and (fmt or format_for_path(path)) == "JPEG"


def save_picture(picture: Picture, pixels: np.ndarray, path: str | os.PathLike, *, fmt: str | None = None,
                 quality: int = 95, overwrite: bool = True) -> str | os.PathLike:
    """Writes `pixels` with `picture`'s alpha, depth, ICC profile and EXIF; without
    `overwrite`, never over a file at `path`."""
    return save_image(
        pixels, path, fmt=fmt, bit_depth=picture.bit_depth, alpha=picture.alpha, quality=quality,
        icc_profile=picture.icc_profile, exif=picture.exif, overwrite=overwrite,
    )
