"""Image denoising: DnCNN, RIDNet and classical filters, seamless tiled inference
on Keras or LiteRT, the benchmark protocol's metrics, training and export.

Images are float32 HWC arrays in [0, 1] everywhere inside the package; only
`denoiser.io` converts to and from 8- and 16-bit files.
"""

from .errors import DenoiserError, ImageError

__all__ = ["DenoiserError", "ImageError"]
