"""Training the real-photo models: a level-map network (FFDNet's input, on a DnCNN
or RIDNet body) fine-tuned from a Gaussian model on camera noise.

Each batch is half synthetic, half real. The synthetic half runs clean training
patches through `noise.camera` at an ISO drawn log-uniformly and a JPEG quality
drawn uniformly (as in CBDNet); its target is the same camera's rendering with no
noise, so the network learns to remove noise, not demosaicing. The real half is
aligned crops of noisy shots and their many-shot means. The level a noisy patch
gets (`level_input`) is either what `metrics.estimate_photo_noise` reads on its
noisy image, which is what the app feeds at the default strength ("estimate"), or
the standard deviation of its true noise ("measured"). On the 24 PolyU scenes the
estimate reads a median 1.36x below the measured level (correlated noise hides
from a one-photo estimate), so a model trained on the measured level
under-denoises at the app's default strength. Validation always feeds the estimate:
it scores what a person gets.

A share of each batch (`clean_share`) is clean: training patches and crops of the
real means, each at the level that `estimate_photo_noise` reads on its whole image,
with itself as the target. Texture and film grain read as noise to any estimate
made from one photo; these patches teach the network to tell them from camera
noise, so that a clean photo at its default strength comes back unchanged.

The real targets carry the shot's slow brightness drift (`aligned_mean`); validation
and every evaluation score against the plain mean, as the protocol says. Whole
scenes are held out for validation, by a fixed rule on their sorted names,
never crops of a training scene. Batch norm stays frozen, as the Gaussian model
left it. Batches are pure functions of (seed, step), and the run goes through the
one training loop and record (`run.run_epochs`), so `resume` continues it exactly.
"""

import json
import multiprocessing
import os
import tempfile
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

import keras
import numpy as np

from .. import camera, metrics, noise, profile
from . import data
from ..architectures.registry import build_model, get_architecture
from .config import LEVEL_INPUTS, RealConfig
from ..engine import with_level
from ..errors import DenoiserError
from ..io import list_images, to_float
from ..pairs import camera_of, pair_files, scenes_of_camera
from .run import RunRecord, open_run, run_epochs
from .train import transfer_weights

HOLD_OUT_EVERY = 4  # every 4th scene of each camera, sorted by name, is held out
ISO_RANGE = (50.0, 12800.0)
JPEG_RANGE = (60, 100)
NO_JPEG = 0.2  # the share of synthetic patches saved losslessly
SYNTHETIC_BORDER = 8  # demosaicing and JPEG blocks behave differently at borders
VAL_CROP = 256
DRIFT_SIGMA = 24.0


def split_scenes(pairs, *, hold_out_camera=""):
    """(train, validation) scene names: every scene of `hold_out_camera` held out, so
    that validation measures what carries over to a camera training never saw, or
    without it every HOLD_OUT_EVERY-th scene of each camera.

    Raises
    ------
    DenoiserError
        When `hold_out_camera` names no camera of `pairs`, or every scene is of it.
    """
    if hold_out_camera:
        held = set(scenes_of_camera(pairs, hold_out_camera))
        if len(held) == len(pairs):
            raise DenoiserError(f"cannot hold out camera {hold_out_camera!r}: every scene is of it")
    else:
        by_camera = {}
        for scene in pairs:
            by_camera.setdefault(camera_of(scene), []).append(scene)
        held = {scene for scenes in by_camera.values() for i, scene in enumerate(sorted(scenes))
                if i % HOLD_OUT_EVERY == 1}
    return [s for s in pairs if s not in held], [s for s in pairs if s in held]


def read_pair(noisy_path, clean_path):
    """A scene's (noisy, clean) uint8 RGB images. Raises DenoiserError when their sizes
    differ."""
    noisy, clean = data.read_training_image(noisy_path, 3), data.read_training_image(clean_path, 3)
    if noisy.shape != clean.shape:
        raise DenoiserError(f"{noisy_path.name} and {clean_path.name} differ in size")
    return noisy, clean


def aligned_mean(noisy, clean):
    """The clean mean with the noisy shot's slow brightness and colour drift.

    A noisy shot and the mean of many shots differ, besides noise, by exposure and
    illumination drift over tens of pixels (up to 4 grey levels in a 256-pixel crop
    here). A denoiser cannot know that drift and should not learn to guess it: the
    target gets the shot's own low frequencies (a Gaussian of DRIFT_SIGMA pixels,
    far wider than the noise's correlation of 1 to 4 pixels)."""
    import cv2

    drift = noisy.astype(np.float32) - clean.astype(np.float32)
    drift = cv2.GaussianBlur(drift, (0, 0), DRIFT_SIGMA)
    return np.clip(np.rint(clean + drift), 0, 255).astype(np.uint8)


def scene_level(noisy, clean):
    """The scene's noise level: the standard deviation of noisy - clean, 0-255 scale."""
    return float(np.std(noisy.astype(np.float32) - clean.astype(np.float32)))


def noisy_level(noisy, clean, level_input):
    """The level a noisy image is fed at: `RealConfig.level_input` ("estimate" or
    "measured"); `noisy` and `clean` float HWC or uint8 alike."""
    if level_input == "estimate":
        return metrics.estimate_photo_noise(to_float(noisy) if noisy.dtype == np.uint8 else noisy)
    if level_input == "measured":
        scale = 1.0 if noisy.dtype == np.uint8 else 255.0
        return scene_level(noisy, clean) * scale
    raise DenoiserError(f"unknown level input {level_input!r}: choose from {', '.join(LEVEL_INPUTS)}")


def validation_level_input(config):
    """The level validation feeds. Round 4's runs: what `metrics.estimate_photo_noise`
    reads, as the app fed them. A fitted run: the true level it trains on, which
    `profile.estimate_level` is calibrated to read, so that its curve does not move
    when the estimator is improved."""
    return "measured" if config.synthetic == "fitted" else "estimate"


def fitted_pair(patch, rng, config):
    """(noisy, clean, level) for one clean uint8 patch through a camera drawn from
    `config.camera_range`: the target is the patch itself."""
    clean = to_float(patch)
    settings = camera.sampler(config.camera_range).sample(rng)
    noisy = camera.shoot(clean, settings, rng=rng)
    b = SYNTHETIC_BORDER
    noisy, clean = noisy[b:-b, b:-b], clean[b:-b, b:-b]
    return noisy, clean, noisy_level(noisy, clean, config.level_input)


def synthetic_pair(patch, rng, level_input):
    """(noisy, clean, level) for one clean uint8 patch through a random camera."""
    clean = to_float(patch)
    iso = float(np.exp(rng.uniform(*np.log(ISO_RANGE))))
    quality = None if rng.random() < NO_JPEG else int(rng.integers(JPEG_RANGE[0], JPEG_RANGE[1] + 1))
    noisy, rendered = noise.camera_pair(clean, iso, rng=rng, jpeg_quality=quality)
    b = SYNTHETIC_BORDER
    noisy, rendered = noisy[b:-b, b:-b], rendered[b:-b, b:-b]
    return noisy, rendered, noisy_level(noisy, rendered, level_input)


class RealBatches:
    """Batches of (noisy and level, clean), pure functions of (seed, step).

    `patch_levels` holds the estimated level of each patch's whole source image, for
    the clean share; `scenes` are (noisy, clean, level, clean's estimated level).
    """

    def __init__(self, config, patches, scenes, patch_levels=None):
        self.config, self.patches, self.scenes = config, patches, scenes
        self.patch_levels = np.zeros(len(patches)) if patch_levels is None else patch_levels

    def _clean(self, rng, size):
        if self.scenes and rng.random() < 0.5:
            _, image, _, level = self.scenes[rng.integers(len(self.scenes))]
            y, x = rng.integers(0, image.shape[0] - size + 1), rng.integers(0, image.shape[1] - size + 1)
            crop = image[y : y + size, x : x + size]
        else:
            index = rng.integers(len(self.patches))
            patch, level = self.patches[index], self.patch_levels[index]
            y, x = rng.integers(0, patch.shape[0] - size + 1, 2)
            crop = patch[y : y + size, x : x + size]
        clean = to_float(data.augment(crop[None], [rng.integers(8)])[0])
        if self.config.synthetic == "fitted":
            # What the app would read on the clean patch: a clean photo fed its own
            # reading must come back as it was.
            level = profile.estimate_level(clean)
        return with_level(clean, level), clean

    def _synthetic_source(self, rng, size):
        """A clean uint8 crop of `size` for the synthetic share: from a training scene's
        mean (`mean_share` of them, "fitted" only) or from the training patches."""
        if self.config.synthetic == "fitted" and self.scenes and rng.random() < self.config.mean_share:
            image = self.scenes[rng.integers(len(self.scenes))][1]
            y, x = rng.integers(0, image.shape[0] - size + 1), rng.integers(0, image.shape[1] - size + 1)
        else:
            image = self.patches[rng.integers(len(self.patches))]
            y, x = rng.integers(0, image.shape[0] - size + 1, 2)
        return data.augment(image[None, y : y + size, x : x + size], [rng.integers(8)])[0]

    def __call__(self, step):
        config = self.config
        rng = np.random.default_rng([config.seed, step])
        size = config.patch_size
        n_real = int(round(config.batch_size * config.real_share)) if self.scenes else 0
        n_clean = int(round(config.batch_size * config.clean_share))
        inputs, targets = [], []
        for _ in range(n_clean):
            noisy, clean = self._clean(rng, size)
            inputs.append(noisy)
            targets.append(clean)
        for _ in range(config.batch_size - n_real - n_clean):
            crop = self._synthetic_source(rng, size + 2 * SYNTHETIC_BORDER)
            if config.synthetic == "fitted":
                noisy, clean, level = fitted_pair(crop, rng, config)
            else:
                noisy, clean, level = synthetic_pair(crop, rng, config.level_input)
            inputs.append(with_level(noisy, level))
            targets.append(clean)
        for _ in range(n_real):
            noisy, clean, level, _ = self.scenes[rng.integers(len(self.scenes))]
            y = rng.integers(0, noisy.shape[0] - size + 1)
            x = rng.integers(0, noisy.shape[1] - size + 1)
            mode = [rng.integers(8)]
            pair = [data.augment(image[None, y : y + size, x : x + size], mode)[0] for image in (noisy, clean)]
            inputs.append(with_level(to_float(pair[0]), level))
            targets.append(to_float(pair[1]))
        return np.stack(inputs), np.stack(targets)

    def save(self, folder):
        """Writes the batches' sources to `folder`, for `load` in another process."""
        folder = Path(folder)
        np.save(folder / "patches.npy", self.patches)
        np.save(folder / "patch_levels.npy", self.patch_levels)
        for i, (noisy, clean, _, _) in enumerate(self.scenes):
            np.save(folder / f"scene{i}_noisy.npy", noisy)
            np.save(folder / f"scene{i}_clean.npy", clean)
        levels = [[level, clean_level] for _, _, level, clean_level in self.scenes]
        (folder / "batches.json").write_text(json.dumps({"config": asdict(self.config), "levels": levels}))

    @classmethod
    def load(cls, folder):
        """The batches that `save` wrote, their arrays memory-mapped (shared, read-only)."""
        folder = Path(folder)
        meta = json.loads((folder / "batches.json").read_text())
        arrays = [
            (np.load(folder / f"scene{i}_noisy.npy", mmap_mode="r"), np.load(folder / f"scene{i}_clean.npy", mmap_mode="r"))
            for i in range(len(meta["levels"]))
        ]
        scenes = [(noisy, clean, level, clean_level) for (noisy, clean), (level, clean_level) in zip(arrays, meta["levels"])]
        return cls(RealConfig(**meta["config"]), np.load(folder / "patches.npy", mmap_mode="r"), scenes,
                   np.load(folder / "patch_levels.npy"))


_worker_batches = None


def _start_worker(folder):
    global _worker_batches
    _worker_batches = RealBatches.load(folder)


def _worker_batch(step):
    return _worker_batches(step)


@contextmanager
def batch_stream(batches, workers=0):
    """A function from an iterable of steps to their batches, in order.

    With `workers`, that many processes make the batches ahead of the training loop:
    on a GPU one CPU core making camera noise is the bottleneck. Batches are pure
    functions of the step, so the result is the same either way."""
    if workers < 1:
        yield lambda steps: map(batches, steps)
        return
    with tempfile.TemporaryDirectory(prefix="real_batches_") as folder:
        batches.save(folder)
        # Spawned, not forked: the parent's JAX or TensorFlow threads may hold locks.
        # The workers only make numpy batches, so they must not take a GPU.
        platforms = os.environ.get("JAX_PLATFORMS")
        os.environ["JAX_PLATFORMS"] = "cpu"
        try:
            pool = multiprocessing.get_context("spawn").Pool(workers, _start_worker, (folder,))
        finally:
            if platforms is None:
                del os.environ["JAX_PLATFORMS"]
            else:
                os.environ["JAX_PLATFORMS"] = platforms
        with pool:
            yield lambda steps: pool.imap(_worker_batch, steps, chunksize=2)


def validation_crops(scenes):
    """Four fixed VAL_CROP crops of each held-out scene: (inputs with level, clean)."""
    inputs, clean = [], []
    for noisy, reference, level, _ in scenes:
        h, w = noisy.shape[:2]
        for fy, fx in ((0.3, 0.3), (0.3, 0.7), (0.7, 0.3), (0.7, 0.7)):
            y, x = int(fy * h) - VAL_CROP // 2, int(fx * w) - VAL_CROP // 2
            inputs.append(with_level(to_float(noisy[y : y + VAL_CROP, x : x + VAL_CROP]), level))
            clean.append(to_float(reference[y : y + VAL_CROP, x : x + VAL_CROP]))
    return np.stack(inputs), np.stack(clean)


def validate(model, inputs, clean):
    """The mean PSNR of `model` on the held-out crops, and of the noisy crops themselves."""
    denoised = model.predict(inputs, batch_size=4, verbose=0)
    noisy = inputs[..., : clean.shape[-1]]
    return {
        "val_psnr": float(np.mean([metrics.psnr(c, d) for c, d in zip(clean, denoised)])),
        "val_psnr_noisy": float(np.mean([metrics.psnr(c, n) for c, n in zip(clean, noisy)])),
    }


def build(config):
    """The level-map model, started from `init_from` with zero weights on the level
    (so it starts as that model), with batch norm frozen."""
    arch = get_architecture(config.arch)
    policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16" if config.mixed_precision else "float32")
    try:
        model = build_model(config.arch, 3, level_map=True, **config.overrides)
    finally:
        keras.config.set_dtype_policy(policy)
    if config.init_from:
        from ..catalog import load_keras_model

        transfer_weights(load_keras_model(config.init_from), model)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False
    model.compile(optimizer=keras.optimizers.Adam(config.lr), loss="mae" if arch.loss == "l1" else "mse")
    return model


def load_scenes(pairs, names, *, level_input, align=False):
    """(noisy, clean, the noisy image's level by `level_input`, the clean image's
    estimated level) per scene; with `align`, the clean image carries the shot's
    drift (`aligned_mean`). The measured level is always against the aligned mean:
    the drift is no noise (one Sony scene: 16.2 against the plain mean, 5.9 aligned)."""
    out = []
    for scene in names:
        noisy, clean = read_pair(*pairs[scene])
        aligned = aligned_mean(noisy, clean)
        level = noisy_level(noisy, aligned, level_input)
        out.append((noisy, aligned if align else clean, level, metrics.estimate_photo_noise(to_float(clean))))
    return out


def training_patches(files, size):
    """Patches of every training image, and the estimated level of each one's image."""
    patches, levels = [], []
    for path in files:
        image = data.read_training_image(path, 3)
        cut = data.image_patches(image, patch_size=size, stride=size, scales=(1.0, 0.7))
        if not cut:
            raise DenoiserError(f"no {size}x{size} patches fit in {path}")
        patches.append(np.stack(cut))
        levels.append(np.full(len(cut), metrics.estimate_photo_noise(to_float(image))))
    return np.concatenate(patches), np.concatenate(levels)


def train_real(config, *, resume=False, workers=0, log=print):
    """Trains (or resumes) the real-photo run in `config.run_dir`; returns its state.
    `workers` processes make the batches (`batch_stream`)."""
    def start(config):
        keras.utils.set_random_seed(config.seed)
        return build(config)

    # A run recorded before `level_input` existed fed the measured level.
    config, model, state = open_run(config, resume, load=keras.models.load_model, start=start,
                                    older={"level_input": "measured"})
    pairs = pair_files(config.pairs_dir) if config.pairs_dir else {}
    train_names, val_names = split_scenes(pairs, hold_out_camera=config.hold_out_camera) if pairs else ([], [])
    state["train_scenes"], state["validation_scenes"] = train_names, val_names
    log(f"real scenes: {len(train_names)} for training, {len(val_names)} held out: {', '.join(val_names)}")
    patch = config.patch_size + 2 * SYNTHETIC_BORDER
    patches, patch_levels = training_patches(list_images(config.train_dir), patch)
    scenes = load_scenes(pairs, train_names, level_input=config.level_input, align=True)
    batches = RealBatches(config, patches, scenes, patch_levels)
    validation = (validation_crops(load_scenes(pairs, val_names, level_input=validation_level_input(config)))
                  if val_names else None)
    record = RunRecord(config, state, "val_psnr")
    score = (lambda model: validate(model, *validation)) if val_names else (lambda model: {})
    with batch_stream(batches, workers) as stream:
        def epoch_steps(epoch):
            first = epoch * config.steps_per_epoch
            for inputs, targets in stream(range(first, first + config.steps_per_epoch)):
                yield model.train_on_batch(inputs, targets)

        return run_epochs(model, record, epoch_steps, score, log=log)
