import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from denoiser import metrics, noise


def test_psnr_of_one_gray_level_everywhere():
    clean = np.full((8, 8, 3), 100 / 255, np.float32)
    shifted = np.full((8, 8, 3), 101 / 255, np.float32)
    assert metrics.psnr(clean, shifted) == pytest.approx(20 * np.log10(255), abs=1e-9)
    assert metrics.psnr(clean, clean) == float("inf")


def test_psnr_rounds_and_clips_like_the_protocol(astronaut, rng):
    estimate = astronaut + rng.normal(0, 0.05, astronaut.shape).astype(np.float32)
    a, b = metrics.quantize(astronaut), metrics.quantize(estimate)
    assert metrics.psnr(astronaut, estimate) == pytest.approx(peak_signal_noise_ratio(a, b, data_range=255))
    assert b.min() >= 0 and b.max() <= 255
    # The protocol's uint8 images are taken as they are, with the same numbers.
    assert metrics.quantize(b) is b
    assert metrics.scores(a, [b]) == metrics.scores(astronaut, [estimate])


def test_wrong_data_range_is_refused(astronaut):
    with pytest.raises(ValueError):
        metrics.psnr(astronaut, astronaut, data_range=1.0)


def test_ssim_is_gaussian_window_ssim_on_uint8(astronaut, rng):
    estimate = astronaut + rng.normal(0, 0.05, astronaut.shape).astype(np.float32)
    expected = structural_similarity(
        metrics.quantize(astronaut), metrics.quantize(estimate), data_range=255, channel_axis=-1,
        gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
    )
    assert metrics.ssim(astronaut, estimate) == pytest.approx(expected, abs=1e-9)
    assert metrics.ssim(astronaut, astronaut) == pytest.approx(1.0)


@pytest.mark.parametrize("shape", [(40, 53, 1), (11, 11, 3), (300, 70, 3)])
def test_ssim_many_matches_scikit_image_for_each_estimate(shape, rng):
    clean = rng.random(shape).astype(np.float32)
    estimates = [np.clip(clean + rng.normal(0, s, shape), 0, 1).astype(np.float32) for s in (0.02, 0.2)]
    expected = [
        structural_similarity(metrics.quantize(clean), metrics.quantize(e), data_range=255, channel_axis=-1,
                              gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
        for e in estimates
    ]
    assert metrics.ssim_many(clean, estimates) == pytest.approx(expected, abs=1e-9)


def test_strips_give_exactly_the_whole_image_numbers(monkeypatch, rng):
    clean = rng.random((61, 37, 3)).astype(np.float32)
    estimate = np.clip(clean + rng.normal(0, 0.1, clean.shape), 0, 1).astype(np.float32)
    whole_psnr, whole_ssim = metrics.psnr(clean, estimate), metrics.ssim(clean, estimate)
    monkeypatch.setattr(metrics, "STRIP_ROWS", 7)
    monkeypatch.setattr(metrics, "SSIM_STRIP_ROWS", 5)
    assert metrics.psnr(clean, estimate) == pytest.approx(whole_psnr, abs=1e-12)
    assert metrics.ssim(clean, estimate) == pytest.approx(whole_ssim, abs=1e-12)
    expected = structural_similarity(
        metrics.quantize(clean), metrics.quantize(estimate), data_range=255, channel_axis=-1,
        gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
    )
    assert whole_ssim == pytest.approx(expected, abs=1e-12)


def test_shape_mismatch_is_an_error_and_an_image_under_the_window_has_no_ssim(astronaut):
    with pytest.raises(ValueError):
        metrics.psnr(astronaut, astronaut[:-1])
    assert metrics.ssim(astronaut[:10, :10], astronaut[:10, :10]) is None
    assert metrics.ssim_many(astronaut[:8, :300], [astronaut[:8, :300]] * 2) == [None, None]
    assert metrics.ssim(astronaut[:11, :11], astronaut[:11, :11]) == pytest.approx(1.0)


@pytest.mark.parametrize("sigma", [5, 10, 25, 50])
@pytest.mark.parametrize("name", ["astronaut", "camera", "coffee"])
def test_blind_sigma_estimate_finds_known_noise(sigma, name):
    from skimage import data

    image = getattr(data, name)().astype(np.float32) / 255.0
    image = image if image.ndim == 3 else image[..., None]
    noisy = noise.gaussian(image, sigma, rng=np.random.default_rng(sigma))
    estimate = metrics.estimate_noise_sigma(noisy)
    assert abs(estimate - sigma) < 0.1 * sigma + 2.0, (name, sigma, estimate)


def test_blind_estimate_of_a_clean_smooth_image_is_small():
    y, x = np.mgrid[0:64, 0:64]
    smooth = (0.5 + 0.3 * np.sin(x / 10.0) * np.cos(y / 13.0))[..., None].astype(np.float32)
    assert metrics.estimate_noise_sigma(smooth) < 1.0


@pytest.mark.parametrize("shape", [(40, 53, 3), (9, 30, 1)])
def test_scores_equal_psnr_and_ssim_one_by_one(shape, rng):
    clean = rng.random(shape).astype(np.float32)
    estimates = [clean + rng.normal(0, s, shape).astype(np.float32) for s in (0.01, 0.1)]
    for (p, s), estimate in zip(metrics.scores(clean, estimates), estimates):
        assert p == metrics.psnr(clean, estimate)
        assert s == (metrics.ssim(clean, estimate) if min(shape[:2]) >= metrics.SSIM_WINDOW else None)
