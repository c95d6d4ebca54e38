"""Training data: patches cut from a folder of clean images, augmented with the
eight flips and rotations, with noise synthesized per batch: Gaussian, or a mix of
the demo's noise types (`noise.NOISE_TYPES`), one type and level per patch.

Batches are pure functions of (seed, epoch, index), so a resumed run sees the
same data as an uninterrupted one. On JAX, `jax_training` draws the same kind of
batch on the device instead.
"""


import numpy as np
from PIL import Image

from ..errors import DenoiserError
from ..io import load_image, to_float, to_integer
from ..noise import NOISE_TYPES
from .config import GAUSSIAN_ONLY

def split_files(files, val_fraction, *, rng):
    """Holds out a seeded random fraction of the files for validation."""
    files = list(files)
    order = rng.permutation(len(files))
    n_val = max(1, int(round(len(files) * val_fraction))) if val_fraction > 0 else 0
    return [files[i] for i in sorted(order[n_val:])], [files[i] for i in sorted(order[:n_val])]


def read_training_image(path, channels):
    """A training image as uint8 HWC with `channels` channels, read as every image is
    (`io.load_image`): a gray image is repeated into three channels, and a colour image
    made gray by ITU-R 601 luma (within a grey level of Pillow's "L": measured on 40
    CBSD432 images, 21 identical, the others at most 1 apart)."""
    pixels = load_image(path).pixels
    if channels == 3 and pixels.shape[2] == 1:
        pixels = np.repeat(pixels, 3, axis=2)
    elif channels == 1 and pixels.shape[2] == 3:
        pixels = pixels @ np.array([[0.299], [0.587], [0.114]], np.float32)
    return to_integer(pixels)


def extract_patches(files, *, channels, patch_size=40, stride=20, scales=(1.0, 0.9, 0.8, 0.7)):
    """All patches on a regular grid of every image at every scale, as uint8 NHWC."""
    patches = [
        patch
        for path in files
        for patch in image_patches(read_training_image(path, channels), patch_size=patch_size, stride=stride,
                                   scales=scales)
    ]
    if not patches:
        raise DenoiserError(f"no {patch_size}x{patch_size} patches fit in the training images")
    return np.stack(patches)


def image_patches(image, *, patch_size, stride, scales):
    """The patches on a regular grid of one uint8 HWC image at every scale, as a list."""
    channels = image.shape[2]
    patches = []
    for scale in scales:
        h, w = int(image.shape[0] * scale), int(image.shape[1] * scale)
        if min(h, w) < patch_size:
            continue
        mode = "L" if channels == 1 else "RGB"
        pil = Image.fromarray(image.squeeze(-1) if channels == 1 else image, mode)
        scaled = np.asarray(pil.resize((w, h), Image.BICUBIC)).reshape(h, w, channels)
        for y in range(0, h - patch_size + 1, stride):
            for x in range(0, w - patch_size + 1, stride):
                patches.append(scaled[y : y + patch_size, x : x + patch_size])
    return patches


def augment(patches, modes):
    """Applies one of the 8 dihedral transforms (mode 0-7) to each patch."""
    out = np.empty_like(patches)
    for i, (patch, mode) in enumerate(zip(patches, modes)):
        patch = np.rot90(patch, k=int(mode) % 4, axes=(0, 1))
        out[i] = patch[:, ::-1] if mode >= 4 else patch
    return out


def make_batch(patches, *, batch_size, sigma_range, seed, epoch, index, noise=GAUSSIAN_ONLY):
    """One (noisy, clean) batch, a pure function of its arguments.

    Gaussian noise stays unclipped, as the evaluation protocol feeds it. With several
    `noise` types, each patch draws its type, then its level in `sigma_range` on the
    0-255 scale of `noise.add_noise`.
    """
    rng = np.random.default_rng([seed, epoch, index])
    picks = rng.integers(0, len(patches), batch_size)
    clean = to_float(augment(patches[picks], rng.integers(0, 8, batch_size)))
    low, high = sigma_range
    sigmas = rng.uniform(low, high, (batch_size, 1, 1, 1)).astype(np.float32)
    if tuple(noise) == GAUSSIAN_ONLY:
        noisy = clean + rng.standard_normal(clean.shape, dtype=np.float32) * (sigmas / 255.0)
        return noisy, clean
    noisy = np.empty_like(clean)
    for i, kind in enumerate(rng.choice(list(noise), batch_size)):
        noisy[i] = NOISE_TYPES[kind].apply(clean[i], float(sigmas[i, 0, 0, 0]), rng=rng)
    return noisy, clean


def epoch_batches(patches, *, batch_size, steps, sigma_range, seed, epoch, noise=GAUSSIAN_ONLY):
    """The `steps` batches of one epoch (`make_batch`), in order."""
    for index in range(steps):
        yield make_batch(patches, batch_size=batch_size, sigma_range=sigma_range, seed=seed, epoch=epoch, index=index,
                         noise=noise)
