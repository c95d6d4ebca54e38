"""Training: patches, on-the-fly noise, Adam with a step schedule, checkpoints
that resume, a CSV log with validation PSNR per epoch.

A run goes through the loop and the record that every kind of training uses
(`run.run_epochs`, `run.RunRecord`); `best.keras` is the best validation PSNR at
sigma 25 (for a mix of noise types, the mean over them).
"""

from functools import partial

import keras
import numpy as np

from .. import metrics
from . import data
from ..architectures.registry import build_model, get_architecture
from .config import GAUSSIAN_ONLY, selection_metric
from ..errors import DenoiserError
from ..evaluate import EVALUATION_SIGMAS, centre_crop
from ..io import list_images, to_float
from ..noise import NOISE_TYPES
from ..runtimes import keras_device
from .export import clip_activations, conversion_samples, equalize_activations
from .qat import calibrate_ranges, quantization_aware
from .run import RunRecord, open_run, run_epochs

CALIBRATION_EPOCH = 1_000_000  # batches no training epoch draws
VAL_CROP = 128


def float32_copy(model):
    """`model` with every layer computing in float32, as trained in mixed precision or
    not: what is published and exported (the weights are float32 either way)."""
    def clone(layer):
        return layer.__class__.from_config({**layer.get_config(), "dtype": "float32"})

    copy = keras.models.clone_model(model, clone_function=clone)
    copy.set_weights(model.get_weights())
    return copy


def transfer_weights(source, target):
    """Copies `source`'s weights into `target`, layer by layer and name by name.

    A gray model may start from a colour one: a gray image is a colour image with
    three equal channels, so the first kernel sums over its input channels, and
    the gray noise is the mean of the three colour noises, so the last kernel
    and bias average over their output channels. The gray model then computes
    exactly the channel mean of what the colour model computes.

    A model that also reads a noise-level map starts with zero weights on that
    channel, so before training it computes exactly what `source` computes.
    """
    sources = {layer.name: layer for layer in source.layers}
    for layer in target.layers:
        if not layer.weights or layer.name not in sources:
            continue
        adapted = []
        for want, have in zip(layer.get_weights(), sources[layer.name].get_weights()):
            if have.ndim == 4 and want.shape[2] == 1 and have.shape[2] != 1:
                have = have.sum(axis=2, keepdims=True)
            if have.ndim in (1, 4) and want.shape[-1] == 1 and have.shape[-1] != 1:
                have = have.mean(axis=-1, keepdims=True)
            if have.ndim == 4 and want.shape[2] == have.shape[2] + 1:
                have = np.concatenate([have, np.zeros_like(have[:, :, :1])], axis=2)
            if want.shape != have.shape:
                raise ValueError(f"layer {layer.name!r}: cannot fit weights of shape {have.shape} into {want.shape}")
            adapted.append(have)
        layer.set_weights(adapted)
    return target


def validation_set(files, channels, seed, noise=GAUSSIAN_ONLY):
    """Centre crops of the held-out images, and {label: the crops with fixed noise}: at
    each protocol sigma for a Gaussian run, at each type's demo level for a mix."""
    clean = []
    for path in files:
        clean.append(centre_crop(to_float(data.read_training_image(path, channels)), VAL_CROP))
    clean = np.stack([c[: min(c.shape[0] for c in clean), : min(c.shape[1] for c in clean)] for c in clean])
    if tuple(noise) == GAUSSIAN_ONLY:
        return clean, {
            sigma: clean + np.random.default_rng([seed, sigma]).standard_normal(clean.shape, dtype=np.float32)
            * sigma / 255.0
            for sigma in EVALUATION_SIGMAS
        }
    noisy = {}
    for i, kind in enumerate(noise):
        noise_type, rng = NOISE_TYPES[kind], np.random.default_rng([seed, i])
        noisy[kind] = np.stack([noise_type.apply(c, noise_type.demo_level, rng=rng) for c in clean])
    return clean, noisy


def recalibrate_batch_norm(model, batches):
    """Re-estimates batch-norm statistics for the current weights.

    Early in training the moving averages lag behind the weights, and a model
    scores far worse in inference mode than in training mode. Forward passes in
    training mode, without gradients, bring the averages up to date.
    """
    has_batch_norm = any(isinstance(layer, keras.layers.BatchNormalization) for layer in model.layers)
    if not has_batch_norm:
        return model
    for noisy, _ in batches:
        model(noisy, training=True)
    return model


def calibration_batches(patches, config, count=30):
    """Batches that no training epoch draws, for re-estimating batch norm."""
    return data.epoch_batches(
        patches, batch_size=config.batch_size, steps=count, sigma_range=config.sigma_range,
        seed=config.seed, epoch=CALIBRATION_EPOCH, noise=config.noise,
    )


def predict(model, inputs, batch_size=8):
    """`model.predict`, with the inputs padded to split evenly over the devices of a
    data-parallel distribution, which shards every batch."""
    distribution = keras.distribution.distribution()
    devices = 1 if distribution is None else distribution.device_mesh.devices.size
    spare = (-len(inputs)) % devices
    padded = np.concatenate([inputs, np.repeat(inputs[-1:], spare, axis=0)]) if spare else inputs
    return model.predict(padded, batch_size=-(-batch_size // devices) * devices, verbose=0)[: len(inputs)]


def validate(model, clean, noisy):
    """{"val_psnr_<label>": mean PSNR} of `model` on each noisy set of the held-out crops."""
    scores = {}
    for label, batch in noisy.items():
        denoised = predict(model, batch)
        scores[f"val_psnr_{label}"] = float(np.mean([metrics.psnr(c, d) for c, d in zip(clean, denoised)]))
    return scores


def scores(model, clean, noisy, metric):
    """The validation scores of `model`, with their mean when `metric` chooses on it."""
    scores = validate(model, clean, noisy)
    if metric == "val_psnr_mean":
        scores["val_psnr_mean"] = float(np.mean(list(scores.values())))
    return scores


def train(config, *, resume=False, verbose=1):
    """Trains (or resumes) the run described by `config`; returns the run's state."""
    config, model, state = _start_or_resume(config, resume)
    if state["epoch"] >= config.epochs:
        return state
    device, previous = keras_device(detailed=True), state.get("device", "")
    state["device"] = previous if previous.endswith(device) else ", then ".join(filter(None, (previous, device)))

    rng = np.random.default_rng(config.seed)
    train_files, val_files = data.split_files(list_images(config.train_dir), config.val_fraction, rng=rng)
    state["validation_files"] = [p.name for p in val_files]
    patches = data.extract_patches(
        train_files, channels=config.channels, patch_size=config.patch_size, stride=config.stride, scales=config.scales
    )
    state["patch_pool"] = int(len(patches))
    clean, noisy = validation_set(val_files, config.channels, config.seed, config.noise)
    record = RunRecord(config, state, selection_metric(config))
    return run_epochs(model, record, _epoch_steps(model, patches, config), partial(scores, clean=clean, noisy=noisy,
                      metric=record.metric), log=print if verbose else None, progress=verbose == 1)


def _start_or_resume(config, resume):
    """(config, compiled model, state): the saved run's, or a new one's."""
    if config.data_parallel:
        # Before any model exists: the distribution places each variable as it is made.
        from .jax_training import data_parallel

        data_parallel(config.batch_size)
    return open_run(config, resume, load=keras.models.load_model, start=_new_model)


def _new_model(config):
    keras.utils.set_random_seed(config.seed)
    if config.full_integer and not config.quantization_aware:
        raise DenoiserError("--full-integer is a kind of quantization-aware training: add --quantization-aware")
    if config.quantization_aware:
        if not config.init_from:
            raise DenoiserError("quantization-aware training fine-tunes a trained model: give --init-from")
        model = keras.models.load_model(config.init_from)
        if config.full_integer:
            # Equalized and clipped before the rounding is learnt (the converter would
            # equalize it after; the clipping is a change the fine-tuning absorbs).
            samples = _conversion_samples(config)
            model = clip_activations(equalize_activations(model, samples), samples)
            model = calibrate_ranges(quantization_aware(model, full_integer=True), samples)
        else:
            model = quantization_aware(model)
    else:
        model = build_model(config.arch, config.channels, **config.overrides)
        if config.init_from:
            transfer_weights(keras.models.load_model(config.init_from), model)
    # XLA made TensorFlow training slower on CPU here; JAX always compiles.
    model.compile(
        optimizer=keras.optimizers.Adam(config.lr), loss="mae" if get_architecture(config.arch).loss == "l1" else "mse",
        jit_compile=keras.backend.backend() != "tensorflow",
    )
    return model


def _conversion_samples(config):
    """What `publish` will convert this run with, by default (`export.conversion_samples`)."""
    return conversion_samples(config.train_dir, channels=config.channels, sigma_range=config.sigma_range)


def _epoch_steps(model, patches, config):
    """The function from an epoch to its steps' losses, on the backend's own data path;
    each epoch ends by re-estimating batch norm (or a full-integer model's ranges) for
    its last weights."""
    backend = keras.backend.backend()
    if backend == "jax":
        from . import jax_training

        if tuple(config.noise) != GAUSSIAN_ONLY:
            raise DenoiserError("a mix of noise types trains on the tensorflow backend (JAX draws Gaussian batches)")
        steps = jax_training.epoch_steps(model, patches, config, loss=get_architecture(config.arch).loss)
    elif backend == "tensorflow":
        def steps(epoch):
            for noisy, clean in data.epoch_batches(
                patches, batch_size=config.batch_size, steps=config.steps_per_epoch, sigma_range=config.sigma_range,
                seed=config.seed, epoch=epoch, noise=config.noise,
            ):
                yield model.train_on_batch(noisy, clean)
    else:
        raise DenoiserError(f"training runs on the tensorflow or jax backend, not {backend!r}")

    samples = _conversion_samples(config) if config.full_integer else None

    def epoch_steps(epoch):
        yield from steps(epoch)
        recalibrate_batch_norm(model, calibration_batches(patches, config))
        if samples is not None:
            # The ranges the converter will calibrate for these weights, for validation
            # and the next epoch.
            calibrate_ranges(model, samples)

    return epoch_steps
