"""Batch denoising on Ray Data: the local engine's pixels and rules, failures in the
summary, resuming, and a worker killed mid-run."""

import csv
import os
import signal
import threading
import time

import numpy as np
import pytest

from denoiser.cli import main
from denoiser.io import load_image, save_image

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.slow  # see pyproject.toml

MODEL = "dncnn_color_int8"


@pytest.fixture(scope="module")
def local_ray(tmp_path_factory):
    from denoiser.ray_engine import start_ray

    # Started from another folder: the workers must find the package wherever they run.
    here = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("elsewhere"))
    try:
        start_ray()
    finally:
        os.chdir(here)
    yield ray
    ray.shutdown()


def photos(folder, astronaut, count):
    folder.mkdir()
    for i in range(count):
        save_image(np.roll(astronaut, 7 * i, axis=1)[:96], folder / f"p{i}.png")
    return folder


def summary_rows(path):
    with open(path) as handle:
        return list(csv.DictReader(handle))


def test_ray_writes_the_local_engines_pixels_and_reports_a_bad_file_without_stopping(local_ray, tmp_path,
                                                                                       astronaut):
    folder = photos(tmp_path / "in", astronaut, 4)
    save_image(astronaut[:64, :64, :1], folder / "gray.png", bit_depth=16)
    assert main(["denoise", str(folder), "-o", str(tmp_path / "local"), "--model", MODEL, "--quiet"]) == 0
    (folder / "broken.png").write_bytes(b"not an image")
    out = tmp_path / "ray"
    # A tile the model cannot take is refused before any work, as by the local engine.
    assert main(["denoise", str(folder), "-o", str(out), "--model", MODEL, "--engine", "ray", "--tile", "7",
                 "--quiet"]) == 2 and not any(out.iterdir())
    assert main(["denoise", str(folder), "-o", str(out), "--model", MODEL, "--engine", "ray", "--workers", "2",
                 "--quiet"]) == 1
    for name in ["p0", "p1", "p2", "p3", "gray"]:
        ours, theirs = load_image(out / f"{name}_denoised.png"), load_image(tmp_path / "local" / f"{name}_denoised.png")
        np.testing.assert_array_equal(ours.pixels, theirs.pixels)
        assert ours.bit_depth == theirs.bit_depth
    rows = {row["file"].rsplit("/", 1)[-1]: row for row in summary_rows(out / "denoise_summary.csv")}
    assert len(rows) == 6 and rows["broken.png"]["status"] == "failed" and "not an image" in rows["broken.png"]["error"]
    assert all(row["status"] == "ok" and float(row["seconds"]) > 0 for name, row in rows.items() if name != "broken.png")

    # A re-run skips what is finished and tries only the rest; the summary keeps both runs.
    (folder / "broken.png").unlink()
    save_image(astronaut[:80, :80], folder / "new.png")
    assert main(["denoise", str(folder), "-o", str(out), "--model", MODEL, "--engine", "ray", "--workers", "2",
                 "--quiet"]) == 0
    rows = summary_rows(out / "denoise_summary.csv")
    assert len(rows) == 7 and rows[-1]["file"].endswith("new.png") and rows[-1]["status"] == "ok"


def worker_processes():
    """The process ids of this machine's Ray denoising workers (Ray titles them)."""
    found = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                if b"DenoiseWorker" in handle.read():
                    found.append(int(entry))
        except (OSError, ValueError):
            continue
    return found


def test_a_worker_killed_mid_run_loses_no_image(local_ray, tmp_path, astronaut):
    from denoiser.ray_engine import denoise_files

    folder = photos(tmp_path / "in", astronaut, 10)
    files = sorted(folder.iterdir())
    targets = [tmp_path / "out" / f"{path.stem}_denoised.png" for path in files]
    targets[0].parent.mkdir()
    summary = tmp_path / "summary.csv"
    killed = []

    def kill_one_worker():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not killed:
            alive = worker_processes()
            if alive and summary.exists() and len(summary.read_text().splitlines()) >= 3:
                os.kill(alive[0], signal.SIGKILL)
                killed.append(alive[0])
            time.sleep(0.2)

    killer = threading.Thread(target=kill_one_worker)
    killer.start()
    failed = denoise_files(files, targets, MODEL, workers=2, summary=summary, show_progress=False)
    killer.join()
    assert killed, "the run ended before a worker could be killed"
    assert failed == 0 and all(target.exists() for target in targets)
    assert {row["file"] for row in summary_rows(summary)} == {str(path) for path in files}
