"""Hostile inputs, round 4 (#47): each case a row or a test that failed before."""

import numpy as np
import pytest

from denoiser import service


@pytest.mark.parametrize("a, b", [
    # One gray, two shapes, the same bytes: one person downloaded the other's photo.
    (np.full((96, 64, 3), 0.5, np.float32), np.full((64, 96, 3), 0.5, np.float32)),
    # Black as 4x4x3 float32 and as 4x4x12 uint8: 192 zero bytes each.
    (np.zeros((4, 4, 3), np.float32), np.zeros((4, 4, 12), np.uint8)),
    # A gray and a colour photo of one value.
    (np.full((12, 8, 1), 0.25, np.float32), np.full((4, 8, 3), 0.25, np.float32)),
])
def test_two_photos_with_the_same_bytes_have_different_cache_keys(a, b):
    assert a.tobytes() == b.tobytes()
    assert service.image_key(a) != service.image_key(b)


def test_the_same_photo_has_the_same_key():
    photo = np.random.default_rng(0).random((32, 48, 3), dtype=np.float32)
    assert service.image_key(photo) == service.image_key(photo.copy())
