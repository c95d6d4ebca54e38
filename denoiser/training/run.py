"""The one training loop (`run_epochs`) and the one record of a run that every kind
of training keeps, in the run's folder:
`state.json` (the config, the epochs done, the counts, the best validation score),
`log.csv` (a row per epoch: row n is after n epochs, row 0 the starting weights
where a run scores them), `last.keras` (to resume) and `best.keras`, and
`last.weights.npz`: the last weights alone in float16, a quarter of `last.keras`
(8.3 MB against 51 MB for the U-Net), which is what a clone keeps of a run that goes
on from day to day. A run that has only it resumes from it with a new optimizer.

A resumed run keeps its data, model and seed, and takes the schedule it is given
(`config.SCHEDULE_FIELDS`); a run folder that was moved resumes where it is now.
"""

import csv
import json
import time
from dataclasses import asdict, fields, replace
from pathlib import Path

import keras
import numpy as np

from ..errors import DenoiserError
from .config import SCHEDULE_FIELDS, learning_rate


def open_run(config, resume, *, load, start, older=None):
    """(config, model, state) of the run in `config.run_dir`: the saved one with the
    given schedule when `resume`, else a new one. `load(path)` reads `last.keras`;
    `start(config)` makes the new model in the new folder. `older` holds the values
    of fields that runs recorded before those fields existed had in effect."""
    run_dir = Path(config.run_dir)
    state_path = run_dir / "state.json"
    if resume:
        if not state_path.exists():
            raise DenoiserError(f"{run_dir} holds no run to resume")
        state = json.loads(state_path.read_text())
        schedule = {key: getattr(config, key) for key in SCHEDULE_FIELDS if hasattr(config, key)}
        names = {f.name for f in fields(config)}
        saved = {key: value for key, value in state["config"].items() if key in names}
        # JSON keeps tuples as lists; the config's own defaults say which fields are tuples.
        saved = {key: tuple(value) if isinstance(getattr(config, key), tuple) else value for key, value in saved.items()}
        config = type(config)(**{**(older or {}), **saved, **schedule, "run_dir": str(run_dir)})
        state["config"] = asdict(config)
        if (run_dir / "last.keras").exists() or not (run_dir / COMPACT).exists():
            return config, load(run_dir / "last.keras"), state
        return config, load_compact(start(replace(config, init_from="")), run_dir / COMPACT), state
    if state_path.exists():
        raise DenoiserError(f"{run_dir} already holds a run; pass --resume to continue it or choose another --run-dir")
    run_dir.mkdir(parents=True, exist_ok=True)
    model = start(config)
    return config, model, {"config": asdict(config), "epoch": 0, "train_seconds": 0.0}


COMPACT = "last.weights.npz"


def save_compact(model, path):
    """`model`'s weights alone, in float16 (`COMPACT`)."""
    arrays = {f"w{i}": np.asarray(w, dtype=np.float16) for i, w in enumerate(model.get_weights())}
    with open(path, "wb") as handle:
        np.savez_compressed(handle, **arrays)


def load_compact(model, path):
    """`model` with the weights `save_compact` wrote (in its compiled optimizer's fresh
    state: the moments are not kept)."""
    with np.load(path) as saved:
        weights = [saved[f"w{i}"] for i in range(len(saved.files))]
    if len(weights) != len(model.get_weights()):
        raise DenoiserError(f"{path} holds {len(weights)} weights, but the run's model has {len(model.get_weights())}")
    model.set_weights([w.astype(np.float32) for w in weights])
    return model


def log_row(path, row):
    """Appends `row` to the CSV log at `path`, under the columns its header names when
    the log exists (a resumed run's columns stay where they were)."""
    path = Path(path)
    if path.exists() and path.stat().st_size:
        with path.open(newline="") as handle:
            columns = next(csv.reader(handle))
        missing = set(row) - set(columns)
        if missing:
            raise DenoiserError(f"{path} has no column for {', '.join(sorted(missing))}")
    else:
        columns = list(row)
    with path.open("a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        if handle.tell() == 0:
            writer.writeheader()
        writer.writerow(row)


class RunRecord:
    """Records each epoch of the run in `config.run_dir` whose `state` it is given; the
    validation score named `metric` picks `best.keras` (its best is `best_<metric>`)."""

    def __init__(self, config, state, metric):
        self.config, self.state, self.metric = config, state, metric
        self.run_dir = Path(config.run_dir)
        self.started = time.monotonic()

    def start(self, score):
        """Logs the starting weights' scores, `score()`, as row 0 of a new run; a resumed
        run has its row 0, and is not validated again for it."""
        if self.state["epoch"] == 0:
            log_row(self.run_dir / "log.csv", {"epoch": 0, "loss": "", "lr": "", "epoch_seconds": 0.0, **score()})

    def end_epoch(self, model, epoch, row):
        """Records epoch `epoch` (counted from 0) of `model` with its log `row` (loss,
        lr, epoch_seconds and scores); True when the run's minutes are up."""
        config, state = self.config, self.state
        state["epoch"] = epoch + 1
        state["steps"] = state["epoch"] * config.steps_per_epoch
        state["patches_seen"] = state["steps"] * config.batch_size
        state["train_seconds"] = state.get("train_seconds", 0.0) + row["epoch_seconds"]
        score = row.get(self.metric)
        if score is not None and score > state.get(f"best_{self.metric}", -1.0):
            state[f"best_{self.metric}"], state["best_epoch"] = score, epoch + 1
            model.save(self.run_dir / "best.keras")
        model.save(self.run_dir / "last.keras")
        save_compact(model, self.run_dir / COMPACT)
        (self.run_dir / "state.json").write_text(json.dumps(state, indent=2))
        log_row(self.run_dir / "log.csv", {"epoch": epoch + 1, **row})
        return bool(config.max_minutes) and time.monotonic() - self.started > 60 * config.max_minutes


def run_epochs(model, record, epoch_steps, score, *, log=None, progress=False):
    """Trains `model` through the remaining epochs of `record`'s run; returns its state.

    This is the loop of every kind of training: Gaussian, noise mixes, quantization-
    aware, real photos, on any backend. They differ in `epoch_steps(epoch)`, an
    iterable that trains the epoch's steps and yields each step's loss, and in
    `score(model)`, the validation scores (a dict, empty with nothing to validate).
    Each epoch runs at the config's scheduled rate (`config.learning_rate`) and is
    recorded (`RunRecord.end_epoch`) until the epochs or the minutes run out. `log`
    takes a line per epoch; `progress` shows a bar over each epoch's steps.
    """
    config, state = record.config, record.state
    record.start(lambda: score(model))
    for epoch in range(state["epoch"], config.epochs):
        rate = learning_rate(config, epoch)
        model.optimizer.learning_rate.assign(rate)
        started, losses = time.monotonic(), []
        bar = keras.utils.Progbar(config.steps_per_epoch) if progress else None
        for loss in epoch_steps(epoch):
            losses.append(loss)
            if bar:
                bar.update(len(losses))
        # Read once the epoch is done: on a GPU, reading each step's loss would wait for it.
        row = {"loss": float(np.mean([np.asarray(loss) for loss in losses])), "lr": rate,
               "epoch_seconds": time.monotonic() - started}
        row.update(score(model))
        stop = record.end_epoch(model, epoch, row)
        if log:
            log(" ".join(f"{key} {value:.4g}" if isinstance(value, float) else f"{key} {value}"
                         for key, value in {"epoch": epoch + 1, **row}.items()))
        if stop:
            break
    return state
