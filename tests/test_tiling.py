import numpy as np
import pytest

from denoiser.engine import count_tiles, denoise, denoise_whole
from denoiser.runtimes import KerasRuntime
from denoiser.tiling import plan_axis, plan_tiles, run_tiled


@pytest.mark.parametrize("size", [1, 2, 31, 32, 33, 64, 95, 96, 97, 200, 513])
@pytest.mark.parametrize("tile,margin", [(32, 5), (32, 0), (48, 12), (11, 5)])
def test_every_pixel_is_kept_once_with_full_margin(size, tile, margin):
    spans = plan_axis(size, tile, margin)
    kept = np.zeros(size, int)
    # The fewest tiles that cover the axis, all of one length, no longer than a tile.
    assert len(spans) == (1 if size <= tile else -(-(size - 2 * margin) // (tile - 2 * margin)))
    assert len({span.length for span in spans}) == 1
    for span in spans:
        assert 0 <= span.start and span.start + span.length <= size
        assert span.length <= min(tile, size)
        kept[span.keep_start : span.keep_stop] += 1
        if span.keep_start > 0:
            assert span.keep_start - span.start >= margin
        if span.keep_stop < size:
            assert span.start + span.length - span.keep_stop >= margin
    assert np.all(kept == 1)


def test_tiles_shrink_to_cover_without_waste():
    # Full 768-pixel tiles would read 1536 pixels of a 1024-pixel axis.
    spans = plan_axis(1024, 768, 17)
    assert [(s.start, s.length) for s in spans] == [(0, 529), (495, 529)]


def test_tile_must_exceed_twice_the_margin():
    with pytest.raises(ValueError):
        plan_axis(100, 10, 5)


# The engine takes sides of 8 pixels or more (`engine.MIN_SIDE`); `run_tiled` alone
# down to one pixel is in test_properties.
SIZES = [(8, 8), (8, 50), (50, 8), (9, 11), (20, 20), (37, 53), (64, 64), (96, 96), (128, 64), (101, 77)]


@pytest.mark.parametrize("shape", SIZES)
def test_tiled_dncnn_equals_whole_image_inference(tiny_dncnn, shape):
    # Tile 32 with margin 5: images of 64 and 96 are exact multiples of the tile.
    runtime = KerasRuntime(tiny_dncnn, margin=5, tile=32, batch=3)
    noisy = np.random.default_rng(sum(shape)).random((*shape, 3)).astype(np.float32)
    whole = denoise_whole(noisy, runtime)
    tiled = denoise(noisy, runtime)
    assert np.abs(whole - noisy).max() > 1e-2  # the model really changes the image
    np.testing.assert_allclose(tiled, whole, atol=1e-5, rtol=0)


def test_denoising_in_place_equals_denoising_into_a_new_image(tiny_dncnn, tiny_dncnn_gray):
    noisy = np.random.default_rng(5).random((101, 77, 3)).astype(np.float32)
    for model in (tiny_dncnn, tiny_dncnn_gray):  # the gray model runs plane by plane
        runtime = KerasRuntime(model, margin=5, tile=32, batch=3)
        expected = denoise(noisy, runtime)
        image = noisy.copy()
        assert denoise(image, runtime, out=image) is image
        np.testing.assert_allclose(image, expected, atol=1e-6, rtol=0)


def test_too_small_margin_shows_seams(tiny_dncnn):
    noisy = np.random.default_rng(0).random((96, 96, 3)).astype(np.float32)
    whole = denoise_whole(noisy, KerasRuntime(tiny_dncnn, margin=5, tile=32))
    seamy = denoise(noisy, KerasRuntime(tiny_dncnn, margin=1, tile=32))
    assert np.abs(seamy - whole).max() > 1e-3


def test_progress_reports_every_tile_and_batches_are_bounded():
    image = np.random.default_rng(0).random((100, 70, 1)).astype(np.float32)
    seen, calls = [], []

    def predict(batch):
        calls.append(batch.shape)
        return batch * 2

    out = run_tiled(image, predict, tile=24, margin=4, batch=5, progress=lambda d, t: seen.append((d, t)))
    total = len(plan_tiles(100, 70, tile=24, margin=4))
    assert seen[-1] == (total, total) and [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert all(shape[0] <= 5 and shape[1:3] == (24, 24) for shape in calls)
    np.testing.assert_allclose(out, image * 2)


def test_gray_image_through_colour_model_and_back(tiny_dncnn, camera):
    runtime = KerasRuntime(tiny_dncnn, margin=5, tile=64)
    out = denoise(camera, runtime)
    assert out.shape == camera.shape
    replicated = denoise(np.repeat(camera, 3, axis=2), runtime).mean(axis=2, keepdims=True)
    np.testing.assert_allclose(out, replicated, atol=1e-6)


def test_colour_image_through_gray_model_plane_by_plane(tiny_dncnn_gray, astronaut):
    runtime = KerasRuntime(tiny_dncnn_gray, margin=4, tile=64)
    seen = []
    out = denoise(astronaut, runtime, progress=lambda d, t: seen.append((d, t)))
    assert out.shape == astronaut.shape
    np.testing.assert_allclose(out[..., 1:2], denoise(astronaut[..., 1:2], runtime), atol=1e-6)
    total = count_tiles(astronaut.shape, runtime)
    assert seen[-1] == (total, total)


class ColumnRamp:
    """A runtime that knows left from right: it adds its column's position in the tile."""

    channels, margin, tile, batch, kind, level_map, multiple = 3, 0, 4096, 1, "keras", False, 1

    def predict(self, tiles, *, level=None):
        return tiles + np.linspace(0, 0.1, tiles.shape[2], dtype=np.float32)[None, None, :, None]


def test_the_ensemble_is_the_same_in_every_orientation_and_counts_its_eight_passes(astronaut):
    image = astronaut[:40, :56]
    calls = []
    ensembled = denoise(image, ColumnRamp(), ensemble=True, progress=lambda done, total: calls.append((done, total)))
    # The plain runtime's ramp runs left to right; the mean over orientations is symmetric.
    assert not np.allclose(denoise(image, ColumnRamp())[:, ::-1], denoise(image[:, ::-1], ColumnRamp()), atol=1e-3)
    for turned in (lambda x: x[:, ::-1], lambda x: x[::-1], lambda x: np.rot90(x), lambda x: np.rot90(x, 3)):
        np.testing.assert_allclose(denoise(np.ascontiguousarray(turned(image)), ColumnRamp(), ensemble=True),
                                   turned(ensembled), atol=1e-6)
    np.testing.assert_allclose(ensembled, image + 0.05, atol=1e-6)
    assert calls[-1] == (8, 8)


@pytest.mark.parametrize("size", [33, 100, 257, 1000, 4000])
@pytest.mark.parametrize("tile,margin", [(100, 20), (768, 32), (1024, 176)])
def test_aligned_tiles_start_on_the_grid_and_cover_with_full_margins(size, tile, margin):
    spans = plan_axis(size, tile, margin, 16)
    assert len({s.length for s in spans}) == 1 and all(s.length <= tile for s in spans)
    if len(spans) > 1:
        assert all(s.start % 16 == 0 for s in spans) and spans[-1].start + spans[-1].length == size
    covered = np.zeros(size, int)
    for s in spans:
        covered[s.keep_start : s.keep_stop] += 1
        inner_start = s.start + (margin if s.start > 0 else 0)
        inner_stop = s.start + s.length - (margin if s.start + s.length < size else 0)
        assert inner_start <= s.keep_start and s.keep_stop <= inner_stop
    assert np.all(covered == 1)


def test_a_strided_unet_tiled_on_the_grid_with_its_full_margin_equals_the_whole_image():
    from support import randomize
    from denoiser.architectures.registry import build_model

    model = randomize(build_model("unet", 3, width=4, blocks=(1, 1, 1)))
    # A tile's own padding to the stride (up to 7 pixels of mirror past its end) reaches
    # that much farther in: a margin of the radius and the stride covers it.
    radius = KerasRuntime(model).margin
    runtime = KerasRuntime(model, tile=160, margin=radius + 8)
    assert runtime.multiple == 8
    image = np.random.default_rng(0).random((150, 203, 3)).astype(np.float32)
    np.testing.assert_allclose(denoise(image, runtime), denoise_whole(image, runtime), atol=1e-5)
