"""Training on the JAX backend, with every batch drawn on the device.

Training steps fed with batches made by NumPy on the host keep a GPU waiting on
the CPU. Here the patch pool lives on the device, and each compiled step draws its
patches, their flips and rotations, and its noise there. Between epochs the
weights go back into the Keras model, so validation, checkpoints and the log are
those of the one training loop (`run.run_epochs`).

Batches are a pure function of (seed, epoch, step), as on the host, though the
random stream is JAX's, not NumPy's.

With `data_parallel`, Keras' DataParallel distribution replicates the variables on
every device and each step shards its batch across them; XLA sums the gradients
between devices. The batch is drawn whole and then split, so the step computes what
one device computes, up to the order of floating-point sums.
"""

import os

import jax
import jax.numpy as jnp
import keras

from ..errors import DenoiserError

# Set on every host of a multi-host run (see `keras.distribution.initialize`).
JOB_ADDRESSES = "KERAS_DISTRIBUTION_JOB_ADDRESSES"


def data_parallel(batch_size):
    """Sets Keras' DataParallel distribution over every device, on every host when
    JOB_ADDRESSES names them, before a model is built; returns it."""
    if keras.backend.backend() != "jax":
        raise DenoiserError(f"data-parallel training runs on the JAX backend, not {keras.backend.backend()!r}")
    if os.environ.get(JOB_ADDRESSES):
        keras.distribution.initialize()
    devices = keras.distribution.list_devices()
    if batch_size % len(devices):
        raise DenoiserError(f"the batch of {batch_size} does not split evenly over {len(devices)} devices")
    distribution = keras.distribution.DataParallel(devices=devices)
    keras.distribution.set_distribution(distribution)
    return distribution


def dihedral(patch, mode):
    """One of the 8 flips and rotations of a square HWC patch (mode 0-7)."""
    turned = jax.lax.switch(mode % 4, [lambda p, k=k: jnp.rot90(p, k=k, axes=(0, 1)) for k in range(4)], patch)
    return jnp.where(mode >= 4, turned[:, ::-1], turned)


def draw_batch(key, patches, *, batch_size, sigma_range):
    """(noisy, clean) float32 batches from a uint8 NHWC patch pool on the device."""
    pick_key, mode_key, sigma_key, noise_key = jax.random.split(key, 4)
    picks = jax.random.randint(pick_key, (batch_size,), 0, patches.shape[0])
    clean = patches[picks].astype(jnp.float32) / 255.0
    clean = jax.vmap(dihedral)(clean, jax.random.randint(mode_key, (batch_size,), 0, 8))
    low, high = sigma_range
    sigmas = jax.random.uniform(sigma_key, (batch_size, 1, 1, 1), minval=low, maxval=high)
    noisy = clean + jax.random.normal(noise_key, clean.shape) * (sigmas / 255.0)
    return noisy, clean


def make_step(model, optimizer, *, loss, batch_size, sigma_range, distribution=None):
    """A compiled training step (variables, patches, key) -> (variables, loss); with a
    `distribution`, each batch is split across its devices."""
    error = (lambda d: jnp.mean(jnp.abs(d))) if loss == "l1" else (lambda d: jnp.mean(jnp.square(d)))

    def step(variables, patches, key):
        trainable, non_trainable, optimizer_state = variables
        noisy, clean = draw_batch(key, patches, batch_size=batch_size, sigma_range=sigma_range)
        if distribution is not None:
            split = distribution.get_data_layout(noisy.shape).backend_layout
            noisy, clean = jax.lax.with_sharding_constraint((noisy, clean), split)

        def objective(trainable, non_trainable):
            denoised, non_trainable = model.stateless_call(trainable, non_trainable, noisy, training=True)
            return error(denoised - clean), non_trainable

        (value, non_trainable), grads = jax.value_and_grad(objective, has_aux=True)(trainable, non_trainable)
        trainable, optimizer_state = optimizer.stateless_apply(optimizer_state, grads, trainable)
        return (trainable, non_trainable, optimizer_state), value

    # A Python loop over one compiled step, not a `lax.scan` over the epoch:
    # XLA:CPU ran convolutions inside the scan's loop 20 times slower here, and
    # on a GPU the steps are queued asynchronously either way.
    return jax.jit(step)


def _read(model, optimizer):
    return (
        [v.value for v in model.trainable_variables],
        [v.value for v in model.non_trainable_variables],
        [v.value for v in optimizer.variables],
    )


def _write(model, optimizer, variables):
    trainable, non_trainable, optimizer_state = variables
    for targets, values in ((model.trainable_variables, trainable), (model.non_trainable_variables, non_trainable),
                            (optimizer.variables, optimizer_state)):
        for target, value in zip(targets, values):
            target.assign(value)


def epoch_steps(model, patches, config, *, loss):
    """The function from an epoch to its steps' losses (device arrays), for
    `run.run_epochs`, on every device of the distribution that `data_parallel` set,
    if any."""
    optimizer = model.optimizer
    optimizer.build(model.trainable_variables)
    distribution = keras.distribution.distribution()
    step = make_step(model, optimizer, loss=loss, batch_size=config.batch_size, sigma_range=config.sigma_range,
                     distribution=distribution)
    pool = jnp.asarray(patches)
    if distribution is not None:
        everywhere = jax.sharding.NamedSharding(distribution.device_mesh.backend_mesh, jax.sharding.PartitionSpec())
        pool = jax.device_put(pool, everywhere)
    base_key = jax.random.key(config.seed)

    def steps(epoch):
        # Read every epoch: the loop sets the learning rate, and batch norm is re-estimated.
        variables = _read(model, optimizer)
        for key in jax.random.split(jax.random.fold_in(base_key, epoch), config.steps_per_epoch):
            variables, value = step(variables, pool, key)
            yield value
        _write(model, optimizer, variables)

    return steps
