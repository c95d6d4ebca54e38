import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np  # noqa: E402
import pytest  # noqa: E402


def randomize(model, seed=0):
    """Random weights and batch-norm statistics, so a test exercises every layer
    (the builders start as the identity, which would hide mistakes)."""
    rng = np.random.default_rng(seed)
    for weight in model.weights:
        path = weight.path
        if "moving_mean" in path:
            weight.assign(rng.normal(0, 0.05, weight.shape))
        elif "moving_variance" in path:
            weight.assign(rng.uniform(0.5, 1.5, weight.shape))
        elif "gamma" in path:
            weight.assign(rng.uniform(0.5, 1.5, weight.shape))
        else:
            fan_in = int(np.prod(weight.shape[:-1])) if len(weight.shape) > 1 else 10
            weight.assign(rng.normal(0, 1.0 / np.sqrt(fan_in), weight.shape))
    return model


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
