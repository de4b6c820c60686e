"""Successive halving for `fastmlp sweep`: every point runs to the first rung (a number of
epochs), the best 1/eta of them by the sweep's metric (validation, the mean over seeds at that
epoch) go on from their checkpoints to the next rung, and so on up to the points' epochs.

    [halving]
    min_epochs = 1        # the first rung; each next one eta times longer, the last = epochs
    eta = 3               # keep the best ceil(n / eta) points at each rung (default 3)
    # or: rungs = [1, 3]  # the epochs of the rungs before the last, instead of min_epochs

A rung trains with the learning-rate schedule of the full epochs and stops early (a cosine
schedule at its rung is where the full run's would be, not at its end), so that a point that
goes on resumes its checkpoint and ends bit for bit as one straight run: its last record has
the key of a straight run of the same configuration (records.run_key), and a straight sweep's
records serve it, and the other way round. A rung's run is keyed "KEY-eN" and keeps its
checkpoint (records.RecordStore). The promotions depend on the records only, so the same
command again reads every rung back and decides as before: it resumes, it does not redo.
"""
import dataclasses
import math
from dataclasses import dataclass

from ..errors import FastMLPError
from .records import RecordedResult, run_key
from .runs import Job, Run

KEYS = ("min_epochs", "rungs", "eta")


@dataclass(frozen=True)
class Halving:
    rungs: tuple  # epochs at each rung, increasing; the last is every point's epochs
    eta: int

    def keep(self, n):
        """How many of n points go on to the next rung."""
        return max(1, math.ceil(n / self.eta))


def _int(path, key, value, low, high=None):
    if not isinstance(value, int) or isinstance(value, bool) or value < low or \
            (high is not None and value >= high):
        bound = f">= {low}" + ("" if high is None else f" and < epochs ({high})")
        raise FastMLPError(f"{path}: [halving] {key} must be an integer {bound}, got {value!r}")
    return value


def load_halving(path, table, points, swept):
    """The Halving of a sweep file's [halving] table, checked against its points."""
    def fail(message):
        raise FastMLPError(f"{path}: [halving] {message}")

    if not isinstance(table, dict):
        fail(f"must be a table ([halving]), got {table!r}")
    unknown = sorted(set(table) - set(KEYS))
    if unknown:
        fail(f"unknown key {unknown[0]!r}; known keys: {', '.join(KEYS)}")
    if "epochs" in swept:
        fail("cuts every point at the same epochs, so epochs must be one value ([fixed]), "
             "not swept")
    if any(p.config.patience for p in points):
        fail("early stopping (patience) stops runs too: use one or the other")
    eta = _int(path, "eta", table.get("eta", 3), 2)
    epochs = points[0].config.epochs
    if ("rungs" in table) == ("min_epochs" in table):
        fail("give min_epochs (the first rung; each next one eta times longer) or rungs (the "
             "epochs of the rungs before the last), one of the two")
    if "rungs" in table:
        rungs = table["rungs"]
        if not isinstance(rungs, list) or not rungs:
            fail(f"rungs must be a list of epochs, got {rungs!r}")
        for r in rungs:
            _int(path, "rungs", r, 1, epochs)
        if any(b <= a for a, b in zip(rungs, rungs[1:])):
            fail(f"rungs must increase, got {rungs!r}")
    else:
        rungs, e = [], _int(path, "min_epochs", table["min_epochs"], 1, epochs)
        while e < epochs:
            rungs.append(e)
            e *= eta
    return Halving((*rungs, epochs), eta)


def _key(config, epochs):
    """A rung's record key: the straight run's at the points' epochs, "KEY-eN" before."""
    key = run_key(config)
    return key if epochs == config.epochs else f"{key}-e{epochs}"


def rung_jobs(points, seeds, halving, rung):
    """The jobs of `points` at rung index `rung`, seeds the outer loop (as runs.plan_jobs);
    without their checkpoints (with_checkpoints adds them)."""
    until, start = halving.rungs[rung], halving.rungs[rung - 1] if rung else 0
    jobs = []
    for seed in range(seeds):
        for point in points:
            config = dataclasses.replace(point.config, seed=seed)
            jobs.append(Job(point.name, seed, config, _key(config, until),
                            None if until == config.epochs else until, start))
    return jobs


def with_checkpoints(jobs, store, done, note=lambda text: None):
    """The jobs, those whose key is not in `done` with the checkpoint their previous rung
    stopped at, when the store has it whole (else they train from scratch: the same numbers;
    note(text) says so of a damaged one)."""
    return [job if job.key in done or not job.start else
            dataclasses.replace(job, checkpoint=_checkpoint(store, job, note))
            for job in jobs]


def _checkpoint(store, job, note):
    """The bytes of the checkpoint `job` goes on from, or None when it is missing or is not
    that run's at that epoch (truncated, garbage, another format, another run's): a damaged
    checkpoint is a missing one, never a rung that fails on every rerun."""
    from ..training import checkpoint

    key = _key(job.config, job.start)
    data = store.read_checkpoint(key)
    if data is None:
        return None
    try:
        found = checkpoint.loads(data, str(store.checkpoint_path(key)))
        if found.config != job.config or len(found.history) != job.start or not found.state:
            raise FastMLPError(f"{store.checkpoint_path(key)}: another run's checkpoint")
    except Exception as e:  # whatever a damaged file makes the loader raise
        why = str(e) if isinstance(e, FastMLPError) else f"{store.checkpoint_path(key)}: " \
            f"{type(e).__name__}"
        note(f"note: {' '.join(why.split())}; that run starts again from epoch 0")
        return None
    return data


def _score(point, seeds, jobs, records, metric):
    """The mean over seeds of `metric` at the rung, or None when a seed has no record."""
    values = []
    for job in jobs:
        if job.experiment == point.name:
            record = records.get(job.key)
            if record is None:
                return None
            values.append(getattr(RecordedResult(record["result"]).final, metric))
    return sum(values) / len(values) if len(values) == seeds else None


def promote(points, seeds, jobs, records, metric, higher, halving):
    """The points that go on from a rung whose jobs were `jobs`: the best halving.keep(n) of
    them by the mean of `metric` over seeds (ties: the file's order); a point with a failed
    seed does not go on."""
    scored = [(s, i, p) for i, p in enumerate(points)
              if (s := _score(p, seeds, jobs, records, metric)) is not None]
    scored.sort(key=lambda t: (-t[0] if higher else t[0], t[1]))
    kept = {p.name for _, _, p in scored[:halving.keep(len(points))]}
    return [p for p in points if p.name in kept]


def furthest(points, seeds, halving, records):
    """(the Runs of each point at the furthest rung it has records of, {point name: that
    rung's epochs}): what the leaderboard ranks."""
    runs, reached = [], {}
    for point in points:
        for epochs in reversed(halving.rungs):
            found = []
            for seed in range(seeds):
                config = dataclasses.replace(point.config, seed=seed)
                record = records.get(_key(config, epochs))
                if record is not None:
                    found.append(Run(point.name, seed, RecordedResult(record["result"]),
                                     record["n_val"], record["n_test"]))
            if found:
                runs += found
                reached[point.name] = epochs
                break
    return runs, reached
