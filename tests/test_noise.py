import numpy as np
import pytest

from denoiser import noise
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
