"""Models on disk: one .npz holding the weights, the architecture, the training settings, the
history, the dataset's checksums and, for resuming, the optimizer and trainer state.

Arrays are stored as arrays; everything else as one JSON document in the `meta` entry. Files
are written atomically, so an interrupted write never replaces a good file with a broken one.
"""
import io
import json
import zipfile
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

from ..atomic import write_atomically
from ..engine.model import MLP
from ..errors import FastMLPError
from ..precisions import is_mixed

FORMAT = "fastmlp-model"
VERSION = 1


@dataclass
class Checkpoint:
    model: MLP
    config: object  # TrainConfig
    history: list  # of dicts, one per epoch
    dataset: dict  # Dataset.record(): name, checksums and the exact train/validation split
    state: dict  # what resuming needs: epoch, optimizer state and steps, RNG, early stopping
    arrays: dict  # the state's arrays: optimizer buffers, shuffle order, best weights


def save(path, model, config, history, dataset, state=None, arrays=None):
    """Write a model (and, for a resumable checkpoint, `state` and its `arrays`) to `path`."""
    write_atomically(path, dumps(model, config, history, dataset, state, arrays))


def dumps(model, config, history, dataset, state=None, arrays=None):
    """The bytes save() writes (a grid's task returns its checkpoint so: the client keeps it)."""
    meta = {"format": FORMAT, "version": VERSION, "sizes": list(model.sizes),
            "dtype": model.dtype.name, "config": asdict(config), "history": history,
            "dataset": dataset, "state": state or {}}
    buffer = io.BytesIO()
    np.savez(buffer, params=model.params, meta=np.frombuffer(json.dumps(meta).encode(), np.uint8),
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
    except (KeyError, ValueError, TypeError, UnicodeDecodeError):
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
    return Checkpoint(model, config, meta["history"], dataset, meta["state"], arrays)
