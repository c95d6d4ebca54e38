import numpy as np
import pytest

from denoiser import camera, noise, profile
from denoiser.errors import DenoiserError

FLAT = np.full((256, 256, 3), 0.5, np.float32)


@pytest.mark.parametrize("sigma", [5, 25, 50])
def test_gaussian_has_requested_std_and_zero_mean(sigma, rng):
    residual = noise.gaussian(FLAT, sigma, rng=rng) - FLAT
    assert abs(residual.std() * 255 - sigma) < 0.02 * sigma
    assert abs(residual.mean() * 255) < 0.1


def test_gaussian_is_unclipped_unless_asked(rng):
    assert noise.gaussian(FLAT, 75, rng=rng).max() > 1.0
    clipped = noise.gaussian(FLAT, 75, rng=np.random.default_rng(1), clip=True)
    assert clipped.min() >= 0.0 and clipped.max() <= 1.0


def test_same_seed_same_noise_and_no_global_state():
    a = noise.gaussian(FLAT, 25, rng=np.random.default_rng(7))
    np.random.seed(99)
    b = noise.gaussian(FLAT, 25, rng=np.random.default_rng(7))
    assert np.array_equal(a, b)


def test_poisson_keeps_mean_and_variance_follows_peak(rng):
    peak = 30.0
    noisy = noise.poisson(np.full((300, 300, 1), 0.4, np.float32), peak, rng=rng)
    assert abs(noisy.mean() - 0.4) < 0.005
    assert abs(noisy.var() - 0.4 / peak) < 0.1 * 0.4 / peak


def test_salt_and_pepper_fraction_and_ratio(rng):
    noisy = noise.salt_and_pepper(FLAT, 0.2, rng=rng, salt_ratio=0.25)
    salt = np.all(noisy == 1.0, axis=-1).mean()
    pepper = np.all(noisy == 0.0, axis=-1).mean()
    assert abs(salt + pepper - 0.2) < 0.01
    assert abs(salt / (salt + pepper) - 0.25) < 0.03


def test_speckle_scales_with_intensity(rng):
    image = np.concatenate([np.full((200, 100, 1), 0.2), np.full((200, 100, 1), 0.8)], axis=1).astype(np.float32)
    residual = noise.speckle(image, 25, rng=rng) - image
    dark, bright = residual[:, :100].std(), residual[:, 100:].std()
    assert abs(bright / dark - 4.0) < 0.3


def test_random_impulse_fraction(rng):
    noisy = noise.random_impulse(FLAT, 0.1, rng=rng)
    assert abs(np.mean(noisy != FLAT) - 0.1) < 0.01


@pytest.mark.parametrize("call", [
    lambda r: noise.gaussian(FLAT, -1, rng=r),
    lambda r: noise.poisson(FLAT, 0, rng=r),
    lambda r: noise.salt_and_pepper(FLAT, 1.5, rng=r),
    lambda r: noise.gaussian(FLAT, 25, rng=0),
    lambda r: noise.gaussian(FLAT[..., 0], 25, rng=r),
])
def test_bad_arguments_raise_value_error(call, rng):
    with pytest.raises(ValueError):
        call(rng)


def test_add_noise_dispatches_and_rejects_unknown(rng):
    for kind in noise.NOISE_TYPES:
        noisy = noise.add_noise(FLAT, kind, 25, rng=rng)
        assert noisy.shape == FLAT.shape and noisy.min() >= 0 and noisy.max() <= 1
        assert not np.array_equal(noisy, FLAT)
    with pytest.raises(DenoiserError):
        noise.add_noise(FLAT, "pink", 25, rng=rng)


def flat(value, side=128):
    return np.full((side, side, 3), value, np.float32)


def test_camera_noise_grows_with_intensity():
    """Shot noise: in linear light the variance grows with the signal over the whole
    range; in sRGB too from shadows to mid-tones, before the tone curve compresses
    the highlights."""
    def stds(values, space):
        return [float(np.std(space(noise.camera(flat(v), 1600, rng=np.random.default_rng(0), jpeg_quality=None))))
                for v in values]

    assert np.all(np.diff(stds((0.05, 0.2, 0.45), lambda x: x)) > 0)
    assert np.all(np.diff(stds((0.05, 0.2, 0.45, 0.7, 0.9), camera.srgb_to_linear)) > 0)


def test_camera_noise_grows_with_iso():
    stds = [float(noise.camera(flat(0.4), iso, rng=np.random.default_rng(0)).std()) for iso in (200, 1600, 6400)]
    assert stds[0] < stds[1] < stds[2]


def test_camera_noise_is_correlated_between_neighbours():
    residual = noise.camera(flat(0.4), 3200, rng=np.random.default_rng(0), jpeg_quality=None)[..., 1] - 0.4
    residual -= residual.mean()
    horizontal = np.mean(residual[:, 1:] * residual[:, :-1]) / residual.var()
    assert horizontal > 0.2
    white = np.random.default_rng(0).standard_normal((128, 128))
    assert abs(np.mean(white[:, 1:] * white[:, :-1]) / white.var()) < 0.05


def test_camera_at_iso_zero_leaves_a_smooth_image_almost_unchanged():
    from skimage import data, filters

    smooth = filters.gaussian(data.astronaut()[::2, ::2] / 255.0, sigma=2, channel_axis=-1).astype(np.float32)
    rendered = noise.camera(smooth, 0, rng=np.random.default_rng(0), jpeg_quality=None)
    assert 10 * np.log10(1 / np.mean((rendered - smooth) ** 2)) > 40


def test_camera_same_seed_same_image_any_size_and_gray():
    image = np.random.default_rng(3).random((33, 17, 3)).astype(np.float32)
    a = noise.camera(image, 800, rng=np.random.default_rng(5))
    assert np.array_equal(a, noise.camera(image, 800, rng=np.random.default_rng(5)))
    assert not np.array_equal(a, noise.camera(image, 800, rng=np.random.default_rng(6)))
    assert a.shape == image.shape and a.dtype == np.float32 and 0 <= a.min() and a.max() <= 1
    assert noise.camera(image[:1, :1], 800, rng=np.random.default_rng(5)).shape == (1, 1, 3)
    assert noise.camera(image[..., :1], 800, rng=np.random.default_rng(5)).shape == (33, 17, 1)


@pytest.mark.parametrize("options", [{"iso": -1}, {"iso": 10**6}, {"iso": 100, "jpeg_quality": 0},
                                     {"iso": 100, "jpeg_quality": 101}])
def test_camera_rejects_levels_out_of_range(options):
    with pytest.raises(ValueError):
        noise.camera(FLAT, rng=np.random.default_rng(0), **options)


def test_camera_is_a_noise_type_that_draws_a_fitted_camera_at_the_iso_level():
    from skimage import data

    noisy = noise.add_noise(FLAT, "camera", 16, rng=np.random.default_rng(0))
    assert np.array_equal(noisy, noise.fitted_camera(FLAT, 1600, rng=np.random.default_rng(0)))
    settings = camera.sample_camera(np.random.default_rng(0), iso=1600)
    assert settings.iso == 1600.0
    # The noise, not the image: on a textured photo the demo's camera leaves the image
    # (its JPEG blocks included) and adds noise that grows with the ISO.
    photo = (data.astronaut()[150:278, 150:278] / 255.0).astype(np.float32)
    def psnr(a):
        return 10 * np.log10(1 / np.mean((a - photo) ** 2))
    demo = {iso: psnr(noise.add_noise(photo, "camera", iso / 100, rng=np.random.default_rng(1)))
            for iso in (0, 400, 1600, 6400)}
    assert demo[0] > 40 and demo[0] > demo[400] > demo[1600] > demo[6400]
    at_1600 = noise.add_noise(photo, "camera", 16, rng=np.random.default_rng(1))
    assert at_1600.dtype == np.float32 and 0 <= at_1600.min() and at_1600.max() <= 1


def test_the_demos_camera_noise_is_correlated_and_mostly_brightness():
    # What real JPEG camera noise is (docs/noise.md): the measured cameras' medians are
    # 0.23-0.45 at 2 pixels, 0.13-0.23 at 4, and 1.4-1.7 times as much brightness as
    # colour noise. On a smooth photo; on a textured one the correlation at 2 pixels
    # falls to 0.16-0.29 (docs/noise.md says why), which is still to be closed.
    clean = np.full((256, 256, 3), 110 / 255, np.float32)
    for level in (8, 16, 32):
        p = profile.profile(noise.add_noise(clean, "camera", level, rng=np.random.default_rng(level)), clean)
        assert 0.2 <= p.correlation[2] <= 0.6 and 0.1 <= p.correlation[4] <= 0.45 and 1.0 <= p.luma_chroma <= 3.0
