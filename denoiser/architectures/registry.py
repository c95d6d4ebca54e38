"""The one mapping from architecture name to builder, presets and training loss."""

from dataclasses import dataclass, field
from typing import Callable

from .autoencoder import build_autoencoder
from .dncnn import build_dncnn
from .ridnet import build_ridnet
from .unet import build_unet


@dataclass(frozen=True)
class Architecture:
    """A registered architecture: its builder, the preset it is published with, its
    training loss, and what it declares it supports."""
    name: str
    builder: Callable
    preset: dict = field(default_factory=dict)
    loss: str = "mse"
    # Whether the builder takes `level_map=True`: a noise-level channel after the image.
    level_map: bool = False
    # A baseline is published to compare against, and is never an app default.
    baseline: bool = False


ARCHITECTURES = {
    "dncnn": Architecture("dncnn", build_dncnn, {"depth": 17, "features": 64}, loss="mse", level_map=True),
    "ridnet": Architecture("ridnet", build_ridnet, {"features": 64, "blocks": 4, "reduction": 16}, loss="l1",
                           level_map=True),
    "unet": Architecture("unet", build_unet, {"width": 32, "blocks": (2, 2, 2, 2)}, loss="l1", level_map=True),
    "autoencoder": Architecture("autoencoder", build_autoencoder, {"features": 32}, loss="mse", baseline=True),
}


def get_architecture(name):
    try:
        return ARCHITECTURES[name]
    except KeyError:
        raise ValueError(f"unknown architecture {name!r}; choose one of {sorted(ARCHITECTURES)}") from None


def build_model(name, channels=3, **overrides):
    """Builds architecture `name` with its preset, overridden by keyword options."""
    arch = get_architecture(name)
    return arch.builder(channels=channels, **{**arch.preset, **overrides})
