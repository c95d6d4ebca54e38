"""Denoising architectures, each in its own module, registered by name in `registry`."""
