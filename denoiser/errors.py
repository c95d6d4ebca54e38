"""The package's errors: problems a person can fix, each with a message meant for them.
Every one is a DenoiserError; ImageError narrows it to an image.
"""


class DenoiserError(Exception):
    """A bad image, option or model file, with a message meant for a person."""


class ImageError(DenoiserError, ValueError):
    """An image could not be read, is unsupported, or is out of bounds."""
