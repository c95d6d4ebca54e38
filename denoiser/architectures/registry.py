"""The one mapping from architecture name to builder, presets and training loss."""

from dataclasses import dataclass, field
from typing import Callable

from .autoencoder import build_autoencoder
from .dncnn import build_dncnn
from .ridnet import build_ridnet


@dataclass(frozen=True)
class Architecture:
    name: str
    builder: Callable
    preset: dict = field(default_factory=dict)
    loss: str = "mse"


ARCHITECTURES = {
    "dncnn": Architecture("dncnn", build_dncnn, {"depth": 17, "features": 64}, loss="mse"),
    "ridnet": Architecture("ridnet", build_ridnet, {"features": 64, "blocks": 4, "reduction": 16}, loss="l1"),
    "autoencoder": Architecture("autoencoder", build_autoencoder, {"features": 32}, loss="mse"),
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
