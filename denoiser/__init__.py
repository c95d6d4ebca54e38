"""Image denoising for photos: DnCNN, RIDNet, a U-Net for CPUs and classical filters,
seamless tiled inference on Keras or LiteRT, camera noise measured and synthesized,
the benchmark protocol's metrics, training and export.

Images are float32 HWC arrays in [0, 1] inside the package; `denoiser.io` converts
to and from 8- and 16-bit files. The verbs:

>>> import numpy as np, denoiser
>>> rng = np.random.default_rng(0)
>>> clean = np.full((64, 64, 3), 0.5, np.float32)
>>> noisy = denoiser.add_noise(clean, "camera", 16, rng=rng)
>>> denoiser.denoise(noisy, "nlm", strength=8).shape
(64, 64, 3)
"""

from .api import denoise, estimate_noise, load_model
from .camera import CameraSettings, sample_camera
from .errors import DenoiserError, ImageError
from .noise import add_noise
from .profile import NoiseProfile
from .profile import profile as noise_profile

__all__ = ["denoise", "load_model", "add_noise", "estimate_noise", "noise_profile", "NoiseProfile",
           "sample_camera", "CameraSettings", "DenoiserError", "ImageError"]
