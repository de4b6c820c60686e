"""Running a grid's experiments: every (experiment, seed), one dataset split in memory at a
time."""
import dataclasses
from dataclasses import dataclass

from .data import load_dataset_for
from .settings import RunOptions


@dataclass
class Run:
    experiment: str
    seed: int
    result: object  # fastmlp.trainer.TrainResult
    n_val: int  # validation and test sizes: the result keeps only the training size
    n_test: int


def run_all(experiments, seeds, options=None, on_run=None, on_epoch=None):
    """Train every experiment once per seed 0..seeds-1; returns the Runs in that order.

    Seeds are the outer loop because the train/validation split depends on the seed only: each
    split is loaded once and every experiment trains on it before the next one is loaded (one
    dataset in memory at a time). options: RunOptions (threads, data directory) of every run.
    on_run(experiment, seed) is called as each run starts, on_epoch(stats) after every epoch.
    """
    from .trainer import train

    options = RunOptions() if options is None else options
    runs, loaded, dataset = [], None, None
    for seed in range(seeds):
        for experiment in experiments:
            config = dataclasses.replace(experiment.config, seed=seed)
            key = (config.dataset, config.dtype, seed, config.val_fraction)
            if key != loaded:
                dataset, loaded = None, None  # let the previous split go before the next loads
                dataset, loaded = load_dataset_for(config, options.data_dir), key
            if on_run is not None:
                on_run(experiment, seed)
            result = train(config, dataset, on_epoch=on_epoch, options=options)
            runs.append(Run(experiment.name, seed, result, len(dataset.val.y),
                            len(dataset.test.y)))
    order = {e.name: i for i, e in enumerate(experiments)}
    return sorted(runs, key=lambda r: (order[r.experiment], r.seed))
