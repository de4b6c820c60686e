"""Models on disk: one .npz holding the weights, the architecture, the training settings, the
history, the dataset's record (checksums, split, classes, how its files were read), the
standardisation statistics if any, the package versions and, for resuming, the optimizer and
trainer state.

Arrays are stored as arrays; everything else as one JSON document in the `meta` entry. Files
are written atomically, so an interrupted write never replaces a good file with a broken one.
Format 2 added the classes, the standardisation and the versions; format 1 files load as
models of the digits 0..9.
"""
import io
import json
import zipfile
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np

from ..atomic import write_atomically
from ..data.classes import from_json
from ..data.scaling import Standardizer
from ..engine.model import MLP
from ..errors import FastMLPError
from ..precisions import is_mixed
from ..runtime.versions import versions

FORMAT = "fastmlp-model"
VERSION = 2


@dataclass
class Checkpoint:
    model: MLP
    config: object  # TrainConfig
    history: list  # of dicts, one per epoch
    dataset: dict  # Dataset.record(): name, checksums and the exact train/validation split
    state: dict  # what resuming needs: epoch, optimizer state and steps, RNG, early stopping
    arrays: dict  # the state's arrays: optimizer buffers, shuffle order, best weights
    scaler: Standardizer | None = None  # the training split's standardisation, if any
    versions: dict = field(default_factory=dict)  # the packages that wrote it

    @property
    def classes(self):
        """The class of each output unit (the digits 0..9 for files of format 1)."""
        return from_json(self.dataset.get("classes"), self.model.sizes[-1])


def save(path, model, config, history, dataset, state=None, arrays=None, scaler=None):
    """Write a model (and, for a resumable checkpoint, `state` and its `arrays`) to `path`."""
    write_atomically(path, dumps(model, config, history, dataset, state, arrays, scaler))


def dumps(model, config, history, dataset, state=None, arrays=None, scaler=None):
    """The bytes save() writes (a grid's task returns its checkpoint so: the client keeps it)."""
    meta = {"format": FORMAT, "version": VERSION, "versions": versions(),
            "sizes": list(model.sizes), "dtype": model.dtype.name, "config": asdict(config),
            "history": history, "dataset": dataset, "state": state or {}}
    buffer = io.BytesIO()
    np.savez(buffer, params=model.params, meta=np.frombuffer(json.dumps(meta).encode(), np.uint8),
             **({} if scaler is None else scaler.arrays()),
             **{f"state_{name}": value for name, value in (arrays or {}).items()})
    return buffer.getvalue()


def load(path):
    """Read a model written by save(); any problem is a one-line FastMLPError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise FastMLPError(f"{path}: no such model file")
    return _read(path, path)


def loads(data, name="checkpoint"):
    """A Checkpoint from the bytes dumps() made; `name` stands for the file in messages."""
    return _read(io.BytesIO(data), name)


def _read(source, path):
    from ..settings import TrainConfig

    try:
        with np.load(source, allow_pickle=False) as npz:
            contents = {name: npz[name] for name in npz.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as e:
        raise FastMLPError(f"{path}: not a readable .npz model ({e})") from None
    except (AttributeError, TypeError):  # a single .npy array: np.load gave no archive
        raise FastMLPError(f"{path}: not a fastmlp model (an .npy array, not an .npz)") \
            from None
    try:
        meta = json.loads(contents["meta"].tobytes())
        if meta.get("format") != FORMAT:
            raise KeyError("format")
        if meta["version"] > VERSION:
            raise FastMLPError(f"{path}: model format {meta['version']} is newer than this "
                               f"fastmlp reads ({VERSION}); upgrade fastmlp")
        sizes, dtype = meta["sizes"], meta["dtype"]
        params = contents["params"]
        # Files of older versions also held run options (threads, data_dir): not settings.
        known = {f.name for f in fields(TrainConfig)}
        saved = {k: v for k, v in meta["config"].items() if k in known}
        dataset = dict(meta["dataset"])
    except (KeyError, ValueError, TypeError, UnicodeDecodeError, MemoryError):
        raise FastMLPError(f"{path}: not a fastmlp model (missing or malformed metadata)") \
            from None
    try:
        config = TrainConfig(**saved)
    except FastMLPError as e:
        raise FastMLPError(f"{path}: invalid saved settings: {e}") from None
    # Older files recorded only the dataset's name and checksums; their split is the config's.
    dataset.setdefault("seed", config.seed)
    dataset.setdefault("val_fraction", config.val_fraction)
    try:
        model = MLP(sizes, dtype, mixed=is_mixed(config.dtype))
    except (TypeError, ValueError):
        raise FastMLPError(f"{path}: not a fastmlp model (malformed sizes or dtype)") from None
    if params.shape != model.params.shape or params.dtype != model.dtype:
        raise FastMLPError(f"{path}: weights do not match the architecture "
                           f"{'-'.join(map(str, model.sizes))} {model.dtype.name}")
    model.load(params)
    arrays = {name[len("state_"):]: value for name, value in contents.items()
              if name.startswith("state_")}
    classes = dataset.get("classes")
    if classes is not None and len(classes) != model.sizes[-1]:
        raise FastMLPError(f"{path}: {len(classes)} classes for {model.sizes[-1]} outputs")
    scaler = Standardizer.from_arrays(contents)
    if scaler is not None and scaler.mean.shape != (model.sizes[0],):
        raise FastMLPError(f"{path}: standardisation of {scaler.mean.shape} for "
                           f"{model.sizes[0]} inputs")
    return Checkpoint(model, config, meta["history"], dataset, meta["state"], arrays, scaler,
                      dict(meta.get("versions") or {}))
