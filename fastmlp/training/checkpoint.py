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
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..atomic import write_atomically
from ..data.classes import from_json
from ..data.scaling import Standardizer
from ..engine.model import MLP
from ..errors import FastMLPError, OutOfMemory
from ..precisions import is_mixed
from ..runtime.versions import versions
from . import modelfile
from .modelfile import FORMAT, NPY_MAGIC, VERSION


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
    """Read a model written by save(); any problem is a one-line FastMLPError naming the file
    (modelfile.py checks the whole file before allocating anything for it)."""
    path = Path(path)
    if path.is_dir():
        raise FastMLPError(f"{path}: a directory, not a model file (.npz)")
    if not path.exists():
        raise FastMLPError(f"{path}: no such model file")
    if not path.is_file():  # a FIFO or a device: reading it could block or never end
        raise FastMLPError(f"{path}: not a regular file, not a model file (.npz)")
    return _read(path, path)


def loads(data, name="checkpoint"):
    """A Checkpoint from the bytes dumps() made; `name` stands for the file in messages."""
    return _read(io.BytesIO(data), name)


def _read(source, path):
    try:
        with (open(source, "rb") if isinstance(source, Path) else source) as f:
            if f.read(6) == NPY_MAGIC:
                raise modelfile.Bad("not a fastmlp model (an .npy array, not an .npz)")
            f.seek(0)
            with zipfile.ZipFile(f) as zf:
                meta, config, arrays = modelfile.read(zf, path)
    except modelfile.Bad as e:
        raise FastMLPError(f"{path}: {e}") from None
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError,
            NotImplementedError) as e:
        raise FastMLPError(f"{path}: not a readable .npz model ({e})") from None
    sizes, dataset = meta["sizes"], meta["dataset"]
    # Older files recorded only the dataset's name and checksums; their split is the config's.
    dataset.setdefault("seed", config.seed)
    dataset.setdefault("val_fraction", config.val_fraction)
    try:
        model = MLP(sizes, meta["dtype"], mixed=is_mixed(config.dtype))
    except MemoryError:  # checked against the memory available, then taken meanwhile
        raise OutOfMemory(f"{path}: allocating its model failed") from None
    model.load(arrays.pop("params"))
    state = {name[len("state_"):]: value for name, value in arrays.items()
             if name.startswith("state_")}
    return Checkpoint(model, config, meta["history"], dataset, meta.get("state") or {}, state,
                      Standardizer.from_arrays(arrays), meta["versions"])
