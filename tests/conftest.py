import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
# Speeds timed by the tests (and the servers they start) stay out of the user's cache.
os.environ["DENOISER_CACHE_DIR"] = tempfile.mkdtemp(prefix="denoiser_cache_")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402
from support import randomize  # noqa: E402


@pytest.fixture(scope="session")
def tiny_dncnn():
    from denoiser.architectures.registry import build_model

    return randomize(build_model("dncnn", 3, depth=5, features=8))


@pytest.fixture(scope="session")
def tiny_dncnn_gray():
    from denoiser.architectures.registry import build_model

    return randomize(build_model("dncnn", 1, depth=4, features=8), seed=1)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture(scope="session")
def astronaut():
    from skimage import data

    return data.astronaut()[::4, ::4].astype(np.float32) / 255.0


@pytest.fixture(scope="session")
def camera():
    from skimage import data

    return data.camera()[::4, ::4, None].astype(np.float32) / 255.0


@pytest.fixture(scope="session")
def astronaut_crop():
    """Full-resolution detail, where the classical filters behave as on photos."""
    from skimage import data

    return data.astronaut()[100:356, 150:406].astype(np.float32) / 255.0


@pytest.fixture
def train_dir(tmp_path, astronaut):
    """Six 64x64 crops of the astronaut: a training folder for tiny runs."""
    folder = tmp_path / "train"
    folder.mkdir()
    for i in range(6):
        crop = astronaut[i * 10 : i * 10 + 64, i * 5 : i * 5 + 64]
        Image.fromarray(np.rint(crop * 255).astype(np.uint8)).save(folder / f"{i}.png")
    return folder


@pytest.fixture
def photo(tmp_path, astronaut):
    """A 70x60 colour PNG cut from the astronaut, in the test's own folder."""
    path = tmp_path / "photo.png"
    Image.fromarray(np.rint(astronaut[:60, :70] * 255).astype(np.uint8)).save(path)
    return path
