"""The public API's examples run as they are written (numpydoc Examples sections)."""

import doctest
import importlib

import pytest

MODULES = ["denoiser", "denoiser.api", "denoiser.camera", "denoiser.profile", "denoiser.io", "denoiser.session"]


@pytest.mark.parametrize("name", MODULES)
def test_the_examples_run(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0


def test_help_shows_an_example():
    import denoiser

    assert "Examples" in denoiser.denoise.__doc__ and ">>> " in denoiser.denoise.__doc__
