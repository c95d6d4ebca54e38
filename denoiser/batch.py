"""One file through the engine, as `python -m denoiser denoise` does it: read, check,
denoise at the given or estimated level, write atomically with the file's metadata.
The command's own loop and the Ray workers (`ray_engine`) both run it, so that both
engines write the same pixels by the same rules."""

import os
from dataclasses import dataclass

from .catalog import counterpart, load_runtime
from .engine import check_image, default_level, denoise
from .io import drops_alpha, load_image, save_picture

# What one worker may use of a machine's cores: all of them, unless told otherwise.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")


def hold_to_threads(threads):
    """Keeps this process's numeric libraries to `threads` threads; call it before
    the first model is loaded."""
    import cv2

    for variable in THREAD_VARIABLES:
        os.environ[variable] = str(threads)
    cv2.setNumThreads(threads)


class ModelShelf:
    """The runtimes a batch needs, each loaded once: the chosen model, and for gray
    images its gray counterpart, where it names one (`catalog.counterpart`)."""

    def __init__(self, chosen, *, threads=None):
        self.chosen, self.threads = chosen, threads
        self.runtimes = {chosen: load_runtime(chosen, threads=threads)}

    def for_channels(self, channels):
        """(name, runtime, whether it was loaded just now) for an image of `channels`."""
        name = counterpart(self.chosen, channels)
        loaded = name not in self.runtimes
        if loaded:
            self.runtimes[name] = load_runtime(name, threads=self.threads)
        return name, self.runtimes[name], loaded


@dataclass
class Done:
    """What became of one file."""

    model: str
    new_model: bool  # the gray model, loaded for this file
    level: float | None
    estimated: bool
    dropped_alpha: bool
    notes: tuple[str, ...] = ()  # what was read otherwise than the file holds (`io.Picture.notes`)


def denoise_file(source, target, shelf, *, level=None, tile=None, batch=None, fmt=None, quality=95, progress=None,
                 ensemble=False, overwrite=False):
    """Denoises `source` into `target` (written atomically, depth, alpha and ICC kept;
    never over a file that appeared at `target` meanwhile, unless `overwrite`); with
    `ensemble`, as the mean over the eight flips and rotations (`engine.ensemble_denoise`)."""
    picture = load_image(source)
    check_image(picture.pixels)
    name, runtime, new_model = shelf.for_channels(picture.channels)
    given = level if level is not None else default_level(picture.pixels, runtime)
    denoised = denoise(picture.pixels, runtime, level=given, tile=tile, batch=batch, progress=progress,
                       ensemble=ensemble)
    save_picture(picture, denoised, target, fmt=fmt, quality=quality, overwrite=overwrite)
    return Done(name, new_model, given, level is None and given is not None, drops_alpha(picture, target, fmt),
                picture.notes)
