"""The library's verbs, as `denoiser.denoise`, `denoiser.load_model`,
`denoiser.add_noise`, `denoiser.estimate_noise` and `denoiser.noise_profile`: each
checks its input once and hands it to the module that owns the work."""

import os

import numpy as np

from .errors import DenoiserError


def load_model(name: str | os.PathLike = "", *, threads: int | None = None):
    """A model to denoise with: a name from `python -m denoiser models`, a classical
    filter ('nlm', 'bilateral', ...), or a .keras or .tflite file.

    Parameters
    ----------
    name : str or path, optional
        Without it, the model recommended for photos that are already noisy.
    threads : int, optional
        Holds a LiteRT model to that many threads (default: every core).

    Returns
    -------
    Runtime
        What `denoise` takes: `runtime.name`, `runtime.level_map` (whether it takes a
        strength map) and `runtime.predict` on batches of tiles.

    Raises
    ------
    DenoiserError
        For a name that is no model and no file.

    Examples
    --------
    >>> from denoiser import load_model
    >>> model = load_model("nlm")
    >>> model.name
    'nlm'
    """
    from .catalog import default_for, load_runtime

    return load_runtime(name or default_for("real_photo"), threads=threads)


def denoise(image: np.ndarray, model=None, *, strength: float | np.ndarray | None = None,
            ensemble: bool = False, progress=None) -> np.ndarray:
    """Takes the noise out of an image, tile by tile, at any size.

    Parameters
    ----------
    image : ndarray
        Float HxWx1 or HxWx3 (or HxW) in [0, 1].
    model : Runtime or str, optional
        What `load_model` returns, or a name for it; by default the model
        recommended for photos.
    strength : float or ndarray, optional
        The noise level on the 0-255 scale (one number, or an HxW map); by default
        what `estimate_noise` reads on the image.
    ensemble : bool
        Average the eight flips and rotations: eight times the work, a little better.
    progress : callable, optional
        Called as `progress(done, total)` in tiles.

    Returns
    -------
    ndarray
        The denoised image, float32, the input's shape.

    Raises
    ------
    DenoiserError
        For an image that is not a finite float image in [0, 1], or a strength
        outside [0, 255].

    Examples
    --------
    >>> import numpy as np
    >>> from denoiser import add_noise, denoise
    >>> rng = np.random.default_rng(0)
    >>> clean = np.full((64, 64, 3), 0.5, np.float32)
    >>> noisy = add_noise(clean, "gaussian", 20, rng=rng)
    >>> result = denoise(noisy, "nlm", strength=20)
    >>> result.shape, bool(np.abs(result - clean).mean() < np.abs(noisy - clean).mean())
    ((64, 64, 3), True)
    """
    from .engine import denoise as run

    image = np.asarray(image)
    if image.ndim == 2:
        return denoise(image[..., None], model, strength=strength, ensemble=ensemble, progress=progress)[..., 0]
    if model is None or isinstance(model, (str, os.PathLike)):
        model = load_model(model or "")
    return run(image, model, level=strength, ensemble=ensemble, progress=progress)


def estimate_noise(image: np.ndarray, *, noise: str = "camera") -> float:
    """The std of an image's noise on the 0-255 scale, from the image alone.

    Parameters
    ----------
    image : ndarray
        Float HxWx1 or HxWx3 in [0, 1].
    noise : {'camera', 'gaussian'}
        'camera' for a photo's own noise, correlated and signal-dependent
        (`profile.estimate_level`, calibrated on real cameras); 'gaussian' for
        white noise of one level added to an image (Donoho's wavelet median).

    Returns
    -------
    float

    Raises
    ------
    DenoiserError
        For an image too small to estimate, or an unknown `noise`.

    Examples
    --------
    >>> import numpy as np
    >>> from denoiser import estimate_noise
    >>> rng = np.random.default_rng(0)
    >>> flat = np.full((128, 128, 3), 0.5, np.float32)
    >>> round(estimate_noise(flat + rng.normal(0, 10 / 255, flat.shape), noise="gaussian"))
    10
    """
    from .metrics import estimate_noise_sigma
    from .profile import estimate_level

    if noise == "camera":
        return estimate_level(image)
    if noise == "gaussian":
        try:
            return estimate_noise_sigma(image)
        except ValueError as exc:
            raise DenoiserError(str(exc)) from None
    raise DenoiserError(f"noise must be 'camera' or 'gaussian', got {noise!r}")
