import numpy as np
import pytest

from denoiser import metrics
from denoiser.evaluate import evaluate, protocol_noisy, to_markdown


def test_protocol_noise_is_unclipped_fixed_per_image_and_sigma(astronaut):
    a = protocol_noisy(astronaut, 25, "x.png")
    assert np.array_equal(a, protocol_noisy(astronaut, 25, "x.png"))
    assert not np.array_equal(a, protocol_noisy(astronaut, 25, "y.png"))
    assert a.min() < 0 or a.max() > 1
    assert abs((a - astronaut).std() * 255 - 25) < 0.5


class Identity:
    name, kind, channels, margin, tile, batch, device, level_map, multiple = (
        "identity", "keras", None, 0, 64, 4, "CPU", False, 1)

    def predict(self, batch, *, level=None):
        return batch


def test_identity_scores_the_noisy_psnr(tmp_path, astronaut):
    from PIL import Image

    for i in range(3):
        Image.fromarray(metrics.quantize(astronaut[i * 10 : i * 10 + 30, :40])).save(tmp_path / f"{i}.png")
    rows = evaluate(Identity(), tmp_path, [15, 50], channels=3)
    assert [r.level for r in rows] == [15, 50]
    for row in rows:
        assert row.images == 3
        assert row.psnr == pytest.approx(row.psnr_noisy)
    assert rows[0].psnr > rows[1].psnr
    assert "| identity |" in to_markdown(rows)
