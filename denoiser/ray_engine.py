"""Batch denoising on Ray Data (`python -m denoiser denoise ... --engine ray`), for
folders of many thousands of photos, on this machine or on a Ray cluster.

The files stream through a pool of worker processes (Ray actors), each of which
loads the model once and runs `batch.denoise_file` on one file at a time: the same
reading, engine and atomic writing as the local loop, so the pixels are the same.
Only file names travel through the pipeline, so memory stays bounded whatever the
number of files. A file that fails is a row of the summary (file, output, status,
error, seconds) and the others go on; a worker that dies is restarted and its file
tried again. Outputs are written atomically, so one that exists is finished: a
re-run skips it (`outputs.plan_outputs`) and completes the rest.

Ray is not a dependency of the app: `pip install -r requirements-scale.txt`.
"""

import csv
import logging
import os
import time
from pathlib import Path

from .errors import DenoiserError

SUMMARY_FIELDS = ("file", "output", "status", "error", "seconds")
# Each worker to one thread: workers, not threads, share the cores.
WORKER_THREADS = 1


class DenoiseWorker:
    """One Ray actor: the model, loaded once, and a function of a batch of rows."""

    def __init__(self, model, options):
        from .batch import ModelShelf, hold_to_threads

        hold_to_threads(WORKER_THREADS)
        self.shelf, self.options = ModelShelf(model, threads=WORKER_THREADS), options

    def __call__(self, rows):
        from .batch import denoise_file

        out = {field: [] for field in SUMMARY_FIELDS}
        for source, target in zip(rows["file"], rows["output"]):
            started = time.perf_counter()
            try:
                denoise_file(Path(source), Path(target), self.shelf, **self.options)
                status, error = "ok", ""
            except DenoiserError as exc:
                status, error = "failed", str(exc)
            except Exception as exc:  # noqa: BLE001  one file's failure must not stop the others
                status, error = "failed", f"{type(exc).__name__}: {exc}"
            for field, value in zip(SUMMARY_FIELDS, (source, target, status, error, time.perf_counter() - started)):
                out[field].append(value)
        return out


def start_ray(address=None):
    """Connects to the Ray cluster at `address` (or $RAY_ADDRESS), else starts Ray here.

    The workers import this package from where the driver has it (on a cluster, every
    node needs the repository at that path), whatever their working directory."""
    try:
        import ray
    except ImportError:
        raise DenoiserError("--engine ray needs Ray: pip install -r requirements-scale.txt") from None
    if not ray.is_initialized():
        repository = str(Path(__file__).resolve().parent.parent)
        paths = os.pathsep.join(filter(None, (repository, os.environ.get("PYTHONPATH"))))
        ray.init(address=address or os.environ.get("RAY_ADDRESS"), include_dashboard=False, log_to_driver=False,
                 configure_logging=False, runtime_env={"env_vars": {"PYTHONPATH": paths}})
    # The command shows its own progress, one file at a time.
    ray.data.DataContext.get_current().enable_progress_bars = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    return ray


def denoise_files(files, targets, model, *, workers=None, address=None, summary, show_progress=True,
                  report=print, **options):
    """Denoises each of `files` into its target on a pool of `workers` Ray actors
    (default: one per core); appends a row per file to the CSV `summary`, and returns
    how many failed."""
    from tqdm import tqdm

    ray = start_ray(address)
    workers = min(len(files), workers or max(1, int(ray.cluster_resources().get("CPU", os.cpu_count() or 1))))
    rows = [{"file": str(source), "output": str(target)} for source, target in zip(files, targets)]
    dataset = ray.data.from_items(rows, override_num_blocks=len(rows)).map_batches(
        DenoiseWorker, fn_constructor_kwargs={"model": model, "options": options}, batch_size=1,
        # Ray Data restarts a worker that dies and retries the file it held.
        compute=ray.data.ActorPoolStrategy(size=workers), num_cpus=WORKER_THREADS,
    )
    summary = Path(summary)
    new = not summary.exists()
    failed = 0
    with summary.open("a", newline="") as handle, tqdm(total=len(rows), unit="file", disable=not show_progress,
                                                       desc=f"{workers} Ray workers") as bar:
        writer = csv.DictWriter(handle, fieldnames=SUMMARY_FIELDS)
        if new:
            writer.writeheader()
        for row in dataset.iter_rows():
            writer.writerow({**row, "seconds": f"{row['seconds']:.3f}"})
            handle.flush()
            if row["status"] != "ok":
                failed += 1
                bar.write(f"failed: {row['file']}: {row['error']}")
            bar.update(1)
    report(f"{len(rows) - failed} of {len(rows)} files denoised, {failed} failed; summary in {summary}")
    return failed
