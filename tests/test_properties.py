"""Property-based tests (hypothesis): file round trips and tiling, over random sizes,
depths, channel counts and tile plans."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from denoiser.io import encode_image, load_image
from denoiser.tiling import run_tiled

FAST = settings(max_examples=40, deadline=None)


@FAST
@given(
    height=st.integers(1, 40), width=st.integers(1, 40), channels=st.sampled_from([1, 3]),
    alpha=st.booleans(), depth=st.sampled_from([8, 16]), fmt=st.sampled_from(["PNG", "TIFF", "WEBP"]),
    seed=st.integers(0, 2**32 - 1),
)
def test_lossless_formats_give_back_every_sample(height, width, channels, alpha, depth, fmt, seed):
    rng = np.random.default_rng(seed)
    depth = 8 if fmt == "WEBP" else depth  # WebP holds 8 bits
    top = 2**depth - 1
    pixels = rng.integers(0, top + 1, (height, width, channels)).astype(np.float32) / top
    transparency = rng.integers(0, top + 1, (height, width)).astype(np.float32) / top if alpha else None
    if fmt == "WEBP" and channels == 1:
        channels, pixels = 3, np.repeat(pixels, 3, axis=2)  # WebP has no gray mode
    back = load_image(encode_image(pixels, fmt, bit_depth=depth, alpha=transparency))
    assert back.channels == channels and back.bit_depth == depth
    np.testing.assert_array_equal(back.pixels, pixels)
    if alpha:
        np.testing.assert_array_equal(back.alpha, transparency)
    else:
        assert back.alpha is None


def box3(batch):
    """A 3x3 mean with edge padding: each output pixel sees one pixel around it."""
    padded = np.pad(batch, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="edge")
    h, w = batch.shape[1:3]
    return sum(padded[:, dy : dy + h, dx : dx + w] for dy in range(3) for dx in range(3)) / 9


@FAST
@given(
    height=st.integers(1, 70), width=st.integers(1, 70), channels=st.sampled_from([1, 3, 4]),
    margin=st.integers(1, 4), extra=st.integers(1, 30), batch=st.integers(1, 5),
    in_place=st.booleans(), seed=st.integers(0, 2**32 - 1),
)
def test_tiled_output_equals_whole_image_output(height, width, channels, margin, extra, batch, in_place, seed):
    image = np.random.default_rng(seed).random((height, width, channels)).astype(np.float32)
    tile = 2 * margin + extra
    whole = box3(image[None])[0]
    # In place, a band of tiles written back too early would feed a later tile its
    # neighbours' outputs instead of the image.
    tiled = run_tiled(image, box3, tile=tile, margin=margin, batch=batch,
                      out=image if in_place else None)
    np.testing.assert_allclose(tiled, whole, atol=1e-6)
    assert (tiled is image) == in_place
