"""The one mapping from architecture name to builder, receptive radius and presets."""

from dataclasses import dataclass, field
from typing import Callable

from .autoencoder import autoencoder_receptive_radius, build_autoencoder
from .dncnn import build_dncnn, dncnn_receptive_radius
from .ridnet import build_ridnet, ridnet_receptive_radius


@dataclass(frozen=True)
class Architecture:
    name: str
    builder: Callable
    receptive_radius: Callable
    preset: dict = field(default_factory=dict)
    loss: str = "mse"
    exact_tiling: bool = True


ARCHITECTURES = {
    "dncnn": Architecture("dncnn", build_dncnn, dncnn_receptive_radius, {"depth": 17, "features": 64}, loss="mse"),
    "ridnet": Architecture(
        "ridnet", build_ridnet, ridnet_receptive_radius, {"features": 64, "blocks": 4, "reduction": 16},
        loss="l1", exact_tiling=False,
    ),
    "autoencoder": Architecture(
        "autoencoder", build_autoencoder, autoencoder_receptive_radius, {"features": 32}, loss="mse",
        exact_tiling=False,
    ),
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


def receptive_radius(model):
    """The tile margin a built model needs; its Keras name is its architecture's."""
    return get_architecture(model.name).receptive_radius(model)
