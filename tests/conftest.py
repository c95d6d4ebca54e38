import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
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
