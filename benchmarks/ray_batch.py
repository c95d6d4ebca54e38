"""Throughput of batch denoising: the local engine against Ray Data with 1 and 2
workers (each held to one thread), on the same folder of synthetic photos, in one run.

    .venv/bin/python benchmarks/ray_batch.py --count 200 --megapixels 0.5

Prints files per second and megapixels per second for each, Ray's start-up time, and
the peak memory of all the processes involved (the command and Ray's own), sampled
from /proc every 0.2 s.
"""

import argparse
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from denoiser.cli import main  # noqa: E402
from denoiser.io import save_image  # noqa: E402


def photo(seed, height, width):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    channels = [0.5 + 0.3 * np.sin(x / rng.uniform(8, 30) + rng.uniform(0, 6)) * np.cos(y / rng.uniform(8, 30))
                for _ in range(3)]
    clean = np.stack(channels, axis=-1)
    return np.clip(clean + rng.normal(0, 0.06, clean.shape), 0, 1).astype(np.float32)


def rss_mb(pid):
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def involved():
    """This process and every Ray process on the machine."""
    pids = [os.getpid()]
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as handle:
                    if b"ray" in handle.read():
                        pids.append(int(entry))
            except OSError:
                continue
    return pids


class PeakMemory:
    def __enter__(self):
        self.peak, self.running = 0.0, True
        self.thread = threading.Thread(target=self.sample, daemon=True)
        self.thread.start()
        return self

    def sample(self):
        while self.running:
            self.peak = max(self.peak, sum(rss_mb(pid) for pid in involved()))
            time.sleep(0.2)

    def __exit__(self, *exc):
        self.running = False
        self.thread.join()


def timed(arguments):
    with PeakMemory() as memory:
        started = time.perf_counter()
        code = main(arguments)
        seconds = time.perf_counter() - started
    if code != 0:
        raise SystemExit(f"{' '.join(arguments)} exited {code}")
    return seconds, memory.peak


def run(count, megapixels, model):
    side = int(np.sqrt(megapixels * 1e6 * 3 / 4))
    height, width = side, int(side * 4 / 3)
    work = Path(tempfile.mkdtemp(prefix="ray_batch_"))
    try:
        folder = work / "in"
        folder.mkdir()
        for i in range(count):
            save_image(photo(i, height, width), folder / f"photo{i:04d}.png")
        total = count * height * width / 1e6
        print(f"{count} photos of {width}x{height} ({total:.0f} MP), model {model}, {os.cpu_count()} cores")
        rows = []
        seconds, peak = timed(["denoise", str(folder), "-o", str(work / "local"), "--model", model, "--quiet"])
        rows.append(("local engine (all cores)", seconds, peak))
        from denoiser.ray_engine import start_ray

        started = time.perf_counter()
        start_ray()
        print(f"Ray started in {time.perf_counter() - started:.1f} s")
        for workers in (1, 2):
            out = work / f"ray{workers}"
            seconds, peak = timed(["denoise", str(folder), "-o", str(out), "--model", model, "--engine", "ray",
                                   "--workers", str(workers), "--quiet"])
            rows.append((f"Ray, {workers} worker(s) of 1 thread", seconds, peak))
        print("| engine | seconds | files/s | MP/s | against local | peak memory (MB) |")
        print("|---|---|---|---|---|---|")
        for label, seconds, peak in rows:
            print(f"| {label} | {seconds:.1f} | {count / seconds:.2f} | {total / seconds:.3f} | "
                  f"{rows[0][1] / seconds:.2f}x | {peak:.0f} |")
        print(f"2 workers against 1: {rows[1][1] / rows[2][1]:.2f}x")
    finally:
        shutil.rmtree(work)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--megapixels", type=float, default=0.5)
    parser.add_argument("--model", default="dncnn_color_int8")
    args = parser.parse_args()
    run(args.count, args.megapixels, args.model)
