"""The workshop: training (Gaussian and real-photo), quantization-aware fine-tuning,
conversion to LiteRT and publishing into `models/`. It builds on the library above it
(`denoiser.io`, `noise`, `metrics`, `engine`, `runtimes`, `catalog`, `evaluate`,
`architectures`); nothing in the library, the app or the denoise command imports it.
"""
