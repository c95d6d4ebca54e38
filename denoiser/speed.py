"""Speed measured where the models run: the manifest's MP/s were measured on the
machine that published them, and CPUs differ (on one with AVX-512 VNNI an int8 model
ran 3 times as fast as float; on one with only AVX2, no faster). So each model is
timed once on this machine, on a small photo stand-in through the tiled engine, and
the figure is cached per machine (CPU model and core count) and per model file."""

import json
import os
import platform
from pathlib import Path

from .catalog import MODELS_DIR, read_manifest

CACHE_VARIABLE = "DENOISER_CACHE_DIR"
# Large enough that a tile's fixed costs do not dominate, small enough that timing all
# shipped variants on a 2-core machine takes about a minute.
CALIBRATION_SIDE = 384


def cache_path():
    """Where measured speeds are kept: $DENOISER_CACHE_DIR, or ~/.cache/denoiser."""
    folder = os.environ.get(CACHE_VARIABLE) or Path.home() / ".cache" / "denoiser"
    return Path(folder) / "speed.json"


def machine():
    """This machine as the cache knows it: its CPU model and how many cores it has."""
    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{name}, {os.cpu_count()} cores"


def _model_key(name, models_dir):
    """A shipped model by its file's checksum, so that a new file is timed anew."""
    entry = read_manifest(models_dir).get(name)
    return f"{name}:{entry['sha256'][:16]}" if entry and "sha256" in entry else name


def _read_cache():
    """The cache as {machine: {model: MP/s}}; anything else in the file (a list, a
    damaged or foreign file) counts as empty, and is measured again."""
    try:
        cache = json.loads(cache_path().read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(cache, dict):
        return {}
    return {here: speeds for here, speeds in cache.items() if isinstance(speeds, dict)}


def _write_cache(cache):
    from .errors import ImageError
    from .io import write_atomically

    try:
        write_atomically(cache_path(), (json.dumps(cache, indent=1, sort_keys=True) + "\n").encode())
    except ImageError:
        pass  # a cache that cannot be written (a read-only home) costs a re-measurement, nothing more


def measured_speed(name, *, models_dir=MODELS_DIR, measure=True, runtime=None):
    """(MP/s on this machine, True if it came from the cache) for model `name`, timed
    through the tiled engine on a CALIBRATION_SIDE-pixel square; None when it is not
    cached and `measure` is False. `runtime` saves loading the model again."""
    from .bench import tiled_rate
    from .catalog import load_runtime

    cache = _read_cache()
    here, key = machine(), _model_key(name, models_dir)
    known = cache.get(here, {}).get(key)
    if known is not None:
        return known, True
    if not measure:
        return None
    rate = tiled_rate(runtime or load_runtime(name, models_dir=models_dir), size=CALIBRATION_SIDE, repeats=2)
    cache.setdefault(here, {})[key] = round(rate, 4)
    _write_cache(cache)
    return rate, False
