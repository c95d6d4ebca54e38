"""A training run's settings and learning-rate schedule, apart from `train` so that
the command line can read them without importing Keras and TensorFlow."""

from dataclasses import dataclass, field

from ..noise import NOISE_TYPES

# What `RealConfig.level_input` may be: see `real_training`.
LEVEL_INPUTS = ("estimate", "measured")
# What `RealConfig.synthetic` may be: round 4's camera (`noise.camera_pair`, white and
# colour-dominant noise) or the camera fitted to real ones (`camera.shoot`).
SYNTHESIZERS = ("camera", "fitted")
# What `train --noise` may mix: camera noise needs a whole photo's pipeline, and trains
# with `train-real`.
TRAINING_NOISES = tuple(kind for kind in NOISE_TYPES if kind != "camera")
GAUSSIAN_ONLY = ("gaussian",)
# What a resumed run may change; the rest is the run's own.
SCHEDULE_FIELDS = ("epochs", "max_minutes", "lr", "lr_halve_every", "min_lr", "data_parallel")


@dataclass
class TrainConfig:
    """A run on added noise (`train`): Gaussian, or a mix of the demo's noise types."""
    arch: str = "dncnn"
    channels: int = 3
    train_dir: str = ""
    run_dir: str = "runs/dncnn_color"
    patch_size: int = 40
    stride: int = 20
    scales: tuple = (1.0, 0.9, 0.8, 0.7)
    sigma_range: tuple = (0.0, 55.0)
    batch_size: int = 64
    steps_per_epoch: int = 200
    epochs: int = 50
    # Measured here: at 1e-3 a 17-layer DnCNN with batch norm sat at the identity
    # for hundreds of steps; at 3e-4 it left it within the first hundred.
    lr: float = 3e-4
    lr_halve_every: int = 10
    min_lr: float = 1e-5
    val_fraction: float = 0.05
    seed: int = 0
    max_minutes: float = 0.0
    init_from: str = ""
    # Fine-tunes `init_from` with int8 rounding in the loop (see `qat`): dynamic range,
    # or with `full_integer` every tensor between layers too.
    quantization_aware: bool = False
    full_integer: bool = False
    overrides: dict = field(default_factory=dict)
    # Splits each batch over every device (and host), on JAX (`jax_training.data_parallel`).
    data_parallel: bool = False
    # The noise types a batch mixes (`data.make_batch`); Gaussian alone is the protocol's.
    noise: tuple = GAUSSIAN_ONLY


def selection_metric(config):
    """The validation score that picks `best.keras`: sigma 25 for a Gaussian run, the
    mean over the noise types for a mix."""
    return "val_psnr_25" if tuple(config.noise) == GAUSSIAN_ONLY else "val_psnr_mean"


def learning_rate(config, epoch):
    """The rate of epoch `epoch` (from 0): halved every `lr_halve_every` epochs, never
    under `min_lr`."""
    return max(config.min_lr, config.lr * 0.5 ** (epoch // max(1, config.lr_halve_every)))


@dataclass
class RealConfig:
    """A real-photo run (`real_training`): a level-map model fine-tuned on camera noise."""

    arch: str = "dncnn"
    init_from: str = "models/dncnn_color.keras"
    train_dir: str = ""
    pairs_dir: str = ""
    run_dir: str = "runs/dncnn_real"
    patch_size: int = 64
    batch_size: int = 16
    real_share: float = 0.5
    # Clean patches (training images and real means) at their estimated level, to be
    # returned unchanged: a clean photo must come back as it was.
    clean_share: float = 0.25
    steps_per_epoch: int = 100
    epochs: int = 20
    lr: float = 1e-4
    lr_halve_every: int = 8
    # No floor: the real-photo runs were recorded halving without one.
    min_lr: float = 0.0
    seed: int = 0
    max_minutes: float = 0.0
    # Architecture options beyond the preset; they must match `init_from`.
    overrides: dict = field(default_factory=dict)
    # The level a noisy training patch is fed at: "estimate" (what the app reads on
    # the photo) or "measured" (its true noise); see `real_training`. The estimate won
    # on both cross-camera directions (docs/real-photos.md, "Recipes").
    level_input: str = "estimate"
    # Every scene of this camera is held out for validation (`real_training.split_scenes`).
    hold_out_camera: str = ""
    # bfloat16 computation with float32 weights, for a GPU; `train.float32_copy`
    # makes the published model float32 throughout.
    mixed_precision: bool = False
    # The synthetic share's camera (SYNTHESIZERS); "fitted" draws settings from
    # `camera_range`: the fitted cameras but the held-out one (`camera.CameraBlend` as a
    # dict), or for round 5's first runs a box of settings (`camera.CameraRange`).
    synthetic: str = "camera"
    camera_range: dict = field(default_factory=dict)
    # The share of synthetic patches cut from the training scenes' clean means (the
    # rest from `train_dir`), "fitted" only.
    mean_share: float = 0.0
