"""Classical denoisers behind the same interface as the learned models, for
comparison: non-local means (Buades et al., CVPR 2005, OpenCV's implementation),
the median filter (the right tool for impulse noise), and the bilateral filter
(Tomasi and Manduchi, ICCV 1998, scikit-image's implementation).

Each takes a float HWC image in [0, 1] and the noise level (a Gaussian sigma) on the
0-255 scale.
"""

import cv2
import numpy as np
from skimage.restoration import denoise_bilateral

from .io import to_float
from .metrics import quantize


def non_local_means(noisy, *, level):
    """OpenCV's non-local means with a filter strength of 0.8 x `level` (0-255 scale)."""
    values = quantize(noisy)
    h = max(1.0, 0.8 * level)
    if values.shape[2] == 1:
        out = cv2.fastNlMeansDenoising(values[..., 0], None, h=h, templateWindowSize=7, searchWindowSize=21)[..., None]
    else:
        out = cv2.fastNlMeansDenoisingColored(values, None, h=h, hColor=h, templateWindowSize=7, searchWindowSize=21)
    return to_float(out)


def median(noisy, *, level):
    """A 3x3 median per channel, 5x5 from `level` 30 on."""
    size = 3 if level < 30 else 5
    values = quantize(noisy)
    out = np.stack([cv2.medianBlur(values[..., c], size) for c in range(values.shape[2])], axis=-1)
    return to_float(out)


def bilateral(noisy, *, level):
    """scikit-image's bilateral filter, 7x7, with a colour sigma of twice `level` (0-255
    scale, at least 0.02 of the range)."""
    clipped = np.clip(np.asarray(noisy, np.float32), 0.0, 1.0)
    out = denoise_bilateral(
        clipped, win_size=7, sigma_color=max(0.02, 2.0 * level / 255.0), sigma_spatial=1.5, channel_axis=-1
    )
    return out.astype(np.float32)


# name -> (function, tile margin covering its support)
CLASSICAL = {
    "nlm": (non_local_means, 13),
    "median": (median, 2),
    "bilateral": (bilateral, 3),
}
TITLES = {"nlm": "Non-local means (classical)", "median": "Median filter (classical)",
          "bilateral": "Bilateral filter (classical)"}
