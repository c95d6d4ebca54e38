"""Throughput and memory benchmark: whole-image against tiled inference per
model and runtime, and the peak resident memory of the tiled pipeline on a
large image. Each measurement runs in a fresh process, so that one model's
memory does not count against the next."""

import multiprocessing
import resource
import time

import numpy as np

from .catalog import MODELS_DIR, load_runtime
from .engine import denoise, denoise_whole
from .errors import DenoiserError


def synthetic_image(height, width, channels, *, seed=0):
    """A smooth gradient with texture plus sigma-25 noise: a stand-in for a photo."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = 0.5 + 0.25 * np.sin(x / 37.0)[..., None] * np.cos(y / 53.0)[..., None]
    base = np.repeat(base, channels, axis=2)
    return (base + rng.standard_normal((height, width, channels), dtype=np.float32) * 25 / 255).astype(np.float32)


def _best_times(calls, image, repeats):
    """The shortest of `repeats` timings of each call on `image`, taken in turns after a
    warm-up of each (graph tracing, a LiteRT model's resizing to its tiles), so that a
    machine that slows down meanwhile slows every call alike."""
    for call in calls:
        call(image)
    best = [float("inf")] * len(calls)
    for _ in range(repeats):
        for i, call in enumerate(calls):
            started = time.perf_counter()
            call(image)
            best[i] = min(best[i], time.perf_counter() - started)
    return best


def tiled_rate(runtime, *, size=1024, repeats=2):
    """Megapixels a second through the tiled engine on a `size`-pixel square photo stand-in."""
    image = synthetic_image(size, size, runtime.channels or 3)
    (seconds,) = _best_times([lambda im: denoise(im, runtime, level=25)], image, repeats)
    return size * size / 1e6 / seconds


def _measure_speed(spec, size, repeats, models_dir):
    # One runtime each, so that neither resizes a LiteRT model's input back and forth.
    whole_runtime, tiled_runtime = (load_runtime(spec, models_dir=models_dir) for _ in range(2))
    image = synthetic_image(size, size, whole_runtime.channels or 3)
    whole, tiled = _best_times([lambda im: denoise_whole(im, whole_runtime, level=25),
                                lambda im: denoise(im, tiled_runtime, level=25)], image, repeats)
    return {
        "model": spec, "runtime": whole_runtime.kind, "device": whole_runtime.device,
        "whole_mp_s": size * size / 1e6 / whole, "tiled_mp_s": size * size / 1e6 / tiled,
    }


def _measure_memory(spec, megapixels, models_dir):
    runtime = load_runtime(spec, models_dir=models_dir)
    width = int(np.sqrt(megapixels * 1e6 * 4 / 3))
    height = int(megapixels * 1e6 / width)
    image = synthetic_image(height, width, runtime.channels or 3)
    started = time.perf_counter()
    denoise(image, runtime, level=25)
    seconds = time.perf_counter() - started
    return {
        "large_megapixels": height * width / 1e6,
        "large_seconds": seconds,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def _in_child(fn, *args):
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(fn, args)


def bench(specs, *, size=1024, megapixels=24.0, repeats=2, models_dir=MODELS_DIR, report=print):
    """Measures every model in `specs`; returns one dict per model."""
    results = []
    for spec in specs:
        try:
            row = _in_child(_measure_speed, spec, size, repeats, models_dir)
            if megapixels > 0:
                row.update(_in_child(_measure_memory, spec, megapixels, models_dir))
        except DenoiserError as exc:
            report(f"{spec}: skipped ({exc})")
            continue
        row["tiled_over_whole"] = row["tiled_mp_s"] / row["whole_mp_s"]
        results.append(row)
        report(format_row(row))
    return results


def format_row(row):
    """One line of `bench` output for a row of `bench_model`."""
    text = (
        f"{row['model']:<22} {row['runtime']:<9} {row['device']:<4} whole {row['whole_mp_s']:7.3f} MP/s"
        f"  tiled {row['tiled_mp_s']:7.3f} MP/s  tiled/whole {row['tiled_over_whole']:5.2f}"
    )
    if "peak_rss_mb" in row:
        text += (
            f"  | {row['large_megapixels']:.1f} MP tiled in {row['large_seconds']:.1f} s,"
            f" peak RSS {row['peak_rss_mb']:.0f} MB"
        )
    return text
