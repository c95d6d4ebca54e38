"""Helpers for the unit tests."""

import numpy as np


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
