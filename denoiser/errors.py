"""The package's one error type for problems a person can fix."""


class DenoiserError(Exception):
    """A bad image, option or model file, with a message meant for a person."""


class ImageError(DenoiserError, ValueError):
    """An image could not be read, is unsupported, or is out of bounds."""
