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


def test_the_manifest_check_measures_every_noise_again_and_finds_a_changed_number(tmp_path, astronaut):
    from PIL import Image

    from denoiser.evaluate import manifest_differences
    from denoiser.runtimes import ClassicalRuntime

    (tmp_path / "set").mkdir()
    Image.fromarray(metrics.quantize(astronaut[:48, :48])).save(tmp_path / "set" / "a.png")
    runtime = ClassicalRuntime("median", channels=None)
    measured = {noise: evaluate(runtime, tmp_path / "set", [25], channels=3, noise=noise)[0].psnr
                for noise in ("gaussian", "salt_and_pepper")}
    entry = {"channels": 3, "quality": {"set": {"25": {"psnr": measured["gaussian"]}}},
             "noise_quality": {"salt_and_pepper": {"set": {"25": {"psnr": measured["salt_and_pepper"] + 0.5}}}}}
    rows = list(manifest_differences("median", entry, runtime, test_root=tmp_path, real_root=tmp_path))
    assert [(row["noise"], row["level"]) for row in rows] == [("gaussian", "25"), ("salt_and_pepper", "25")]
    assert rows[0]["difference"] == 0 and rows[1]["difference"] == pytest.approx(-0.5)
