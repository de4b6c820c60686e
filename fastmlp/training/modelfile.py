"""Model files are untrusted input: this module checks one whole before anything is allocated
for it, and checkpoint.load and loads read every model through it.

In order: the container (an .npz, not an .npy or a directory) and each entry's declared size,
so a zip bomb or an entry claiming terabytes is refused unread; the metadata, field by field
(format and version, sizes, precision, settings, history, dataset record, classes, resume
state); the memory the model will take, against the memory available (plan.check_bytes);
each array's header (type and shape) against what the metadata implies; only then the arrays.
Every problem is one FastMLPError line naming the file and what is wrong.
"""
import json
import math
import numbers
import zipfile
import zlib
from dataclasses import fields

import numpy as np

from ..constraints import Integer, Invalid, Layers, Options, Real
from ..engine.model import flat_length
from ..engine.optim import OPTIMIZERS
from ..errors import FastMLPError
from ..precisions import is_mixed, parameter_dtype
from ..runtime.blas import BACKENDS
from ..units import size_text

FORMAT = "fastmlp-model"
VERSION = 2
NPY_MAGIC = b"\x93NUMPY"  # an array saved with np.save, not a model
MAX_META_BYTES = 64 * 2**20  # settings, history and classes: kilobytes in any real model
MAX_HIDDEN = 1000  # hidden layers a model file may declare
MAX_ENTRIES = 64  # a model has params, meta, the standardisation and a few state arrays
NPY_HEADER = 10_000  # bytes an .npy header may take (numpy's own limit)
NUMBER, COUNT = Real(-math.inf), Integer(0)


class Bad(Exception):
    """What is wrong with a model file, as a phrase that follows its name."""


def _short(text, most=120):
    text = str(text)
    return text if len(text) <= most else text[:most] + "..."


def _is_number(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _check(value, constraint, where):
    """value checked by a constraints.py Constraint (None passes when `optional`)."""
    try:
        return constraint.check(value)
    except Invalid as e:
        raise Bad(f"{where} {_short(e)}") from None


def _kind(value, kind, where, optional=False):
    if (value is None and optional) or isinstance(value, kind):
        return value
    names = {dict: "an object", list: "a list", str: "a string"}
    raise Bad(f"{where} must be {names[kind]}{' or null' if optional else ''}, got "
              f"{_short(repr(value), 60)}")


def _optional(value, constraint, where):
    return None if value is None else _check(value, constraint, where)


# --- the container ---------------------------------------------------------------------------

def entries(zf):
    """{name: ZipInfo} of the .npy entries of an opened archive."""
    infos = zf.infolist()
    if len(infos) > MAX_ENTRIES:
        raise Bad(f"not a fastmlp model (an archive of {len(infos)} entries)")
    return {i.filename[:-4]: i for i in infos if i.filename.endswith(".npy")}


def read_array(zf, info, name, dtype, shape):
    """The array of entry `info`, after its declared size and its header's type and shape are
    found to be `dtype` and `shape` (shape None: any 1-D length up to MAX_META_BYTES)."""
    dtype = np.dtype(dtype)
    count = MAX_META_BYTES if shape is None else math.prod(shape)
    if info.file_size > count * dtype.itemsize + NPY_HEADER:
        raise Bad(f"entry {name} declares {size_text(info.file_size)}, more than its "
                  f"{'limit' if shape is None else 'shape'} allows")
    try:
        with zf.open(info) as f:
            version = np.lib.format.read_magic(f)
            header = {(1, 0): np.lib.format.read_array_header_1_0,
                      (2, 0): np.lib.format.read_array_header_2_0}.get(version)
            if header is None:
                raise Bad(f"entry {name} is an .npy of version {version}, not 1.0 or 2.0")
            got_shape, _, got_dtype = header(f, max_header_size=NPY_HEADER)
            if got_dtype != dtype or (len(got_shape) != 1 if shape is None
                                      else got_shape != tuple(shape)):
                want = f"1-D {dtype}" if shape is None else f"{dtype} of shape {tuple(shape)}"
                raise Bad(f"entry {name} holds {got_dtype} of shape {got_shape}, expected "
                          f"{want}")
            if shape is None and got_shape[0] > count:
                raise Bad(f"entry {name} holds {got_shape[0]} bytes, more than "
                          f"{size_text(count)}")
            size = math.prod(got_shape) * dtype.itemsize
            data = f.read(size)
            if len(data) < size or f.read(1):
                raise Bad(f"entry {name} is {'shorter' if len(data) < size else 'longer'} "
                          "than its header says")
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError,
            NotImplementedError, RuntimeError) as e:
        raise Bad(f"not a readable .npz model (entry {name}: {_short(e, 80)})") from None
    return np.frombuffer(data, dtype).reshape(got_shape).copy()


def read_meta(zf, infos):
    """The metadata document of an opened model archive."""
    if "meta" not in infos or "params" not in infos:
        held = ", ".join(sorted(infos)[:8]) or "no arrays"
        raise Bad(f"not a fastmlp model (no meta and params entries; it holds {held})")
    raw = read_array(zf, infos["meta"], "meta", np.uint8, None)
    try:
        meta = json.loads(raw.tobytes())
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise Bad("not a fastmlp model (its metadata is not JSON)") from None
    _kind(meta, dict, "metadata")
    if meta.get("format") != FORMAT:
        raise Bad(f"not a fastmlp model (its metadata names format "
                  f"{_short(repr(meta.get('format')), 40)})")
    version = _check(meta.get("version"), Integer(1), "metadata field version")
    if version > VERSION:
        raise Bad(f"model format {version} is newer than this fastmlp reads ({VERSION}); "
                  "upgrade fastmlp")
    return meta


# --- the metadata ----------------------------------------------------------------------------

def check_config(meta):
    """The TrainConfig of the metadata, its sizes and parameter dtype checked against it."""
    from ..settings import TrainConfig

    sizes = meta.get("sizes")
    if not isinstance(sizes, list) or not 2 <= len(sizes) <= MAX_HIDDEN + 2:
        raise Bad(f"metadata field sizes must be a list of 2 to {MAX_HIDDEN + 2} layer sizes, "
                  f"got {_short(repr(sizes), 60)}")
    sizes = _check(sizes, Layers(), "metadata field sizes")
    dtype = _check(meta.get("dtype"), Options(("float32", "float64")), "metadata field dtype")
    saved = _kind(meta.get("config"), dict, "metadata field config")
    # Files of older versions also held run options (threads, data_dir): not settings.
    known = {f.name for f in fields(TrainConfig)}
    try:
        config = TrainConfig(**{k: v for k, v in saved.items() if k in known})
    except FastMLPError as e:
        raise Bad(f"invalid saved settings: {_short(e)}") from None
    if tuple(config.layers) != sizes[1:-1]:
        raise Bad(f"its sizes {'-'.join(map(str, sizes))} do not match its settings' layers "
                  f"{' '.join(map(str, config.layers))}")
    if parameter_dtype(config.dtype) != np.dtype(dtype):
        raise Bad(f"its parameters are {dtype}, its settings' precision is {config.dtype}")
    return config, sizes, dtype


def check_history(history):
    """The per-epoch history (a model file's, or a run's that `plot` reads): EpochStats
    fields, epochs numbered 1, 2, ..., numbers where numbers belong."""
    from .result import EpochStats

    names = [f.name for f in fields(EpochStats)]
    for i, entry in enumerate(_kind(history, list, "metadata field history")):
        where = f"history entry {i + 1}"
        _kind(entry, dict, where)
        missing, unknown = set(names) - set(entry), set(entry) - set(names)
        if missing or unknown:
            what = f"lacks {sorted(missing)[0]}" if missing else \
                f"has the unknown field {_short(sorted(unknown)[0], 40)!r}"
            raise Bad(f"{where} {what}")
        if entry["epoch"] != i + 1 or isinstance(entry["epoch"], bool):
            raise Bad(f"{where} has epoch {_short(repr(entry['epoch']), 40)}, expected {i + 1}")
        for name in names[1:]:
            value = entry[name]
            if not (_is_number(value) or (value is None and name == "test_acc")):
                raise Bad(f"{where}: {name} must be a number, got {_short(repr(value), 40)}")
            if name.endswith("_acc") and value is not None and not 0 <= value <= 1:
                raise Bad(f"{where}: {name} must be in [0, 1], got {value!r}")


def check_dataset(record, sizes):
    """The dataset record (Dataset.record()): what evaluate, predict and resuming read of it."""
    record = dict(_kind(record, dict, "metadata field dataset"))
    where = "metadata field dataset."
    _kind(record.get("name"), str, where + "name", optional=True)
    sha256 = _kind(record.get("sha256"), dict, where + "sha256", optional=True) or {}
    for name, digest in sha256.items():
        _kind(digest, str, f"{where}sha256 of {_short(name, 40)}")
    _optional(record.get("seed"), Integer(0), where + "seed")
    _optional(record.get("val_fraction"), Real(0, 1, "left"), where + "val_fraction")
    for name in ("n_train", "n_val", "n_test"):
        _optional(record.get(name), COUNT, where + name)
    classes = _kind(record.get("classes"), list, where + "classes", optional=True)
    if classes is not None:
        kinds = {type(c) for c in classes}
        if not (kinds <= {int} or kinds == {str}) or len(set(classes)) != len(classes):
            raise Bad(f"{where}classes must be distinct integers or strings, got "
                      f"{_short(repr(classes), 60)}")
        if len(classes) != sizes[-1]:
            raise Bad(f"{len(classes)} classes for {sizes[-1]} outputs")
    source = _kind(record.get("source"), dict, where + "source", optional=True)
    if source is not None:
        if not isinstance(source.get("path"), str) or not source["path"]:
            raise Bad(f"{where}source.path must be a non-empty string, got "
                      f"{_short(repr(source.get('path')), 60)}")
        _kind(source.get("kind"), str, where + "source.kind", optional=True)
        size = _kind(source.get("image_size"), list, where + "source.image_size", True)
        if size is not None and (len(size) != 2 or not all(
                isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in size)):
            raise Bad(f"{where}source.image_size must be [width, height], got {size!r}")
        label = source.get("label_column")
        if not (label is None or isinstance(label, str) or
                (isinstance(label, int) and not isinstance(label, bool))):
            raise Bad(f"{where}source.label_column must be a name or an index, got "
                      f"{_short(repr(label), 40)}")
    shape = _kind(record.get("image_shape"), list, where + "image_shape", optional=True)
    for side in shape or ():
        _check(side, Integer(1), where + "image_shape")
    return record


def check_versions(versions):
    versions = _kind(versions, dict, "metadata field versions", optional=True) or {}
    for name, version in versions.items():
        _kind(version, str, f"metadata field versions.{_short(name, 40)}", optional=True)
    return versions


# --- the resume state ------------------------------------------------------------------------

def check_state(state, config, record, history):
    """A resumable checkpoint's state (Session.write): {array name: (dtype, shape)} of the arrays
    it needs beside the parameters; {} for a final model."""
    _kind(state, dict, "metadata field state")
    if not state:
        return {}
    where = "resume state "
    for name in ("trainer", "early"):
        _kind(state.get(name), dict, where + name)
    trainer, early = state["trainer"], state["early"]
    n_train = record.get("n_train")
    if not isinstance(n_train, int) or n_train < 1:
        raise Bad("a resumable checkpoint whose dataset record has no n_train")
    rows = min(config.batch_size or n_train, n_train)
    _check(trainer.get("optimizer_steps"), COUNT, where + "trainer.optimizer_steps")
    _check(trainer.get("position"), Integer(0, -(-n_train // rows) - 1), where +
           "trainer.position")
    partial = trainer.get("partial")
    if not (isinstance(partial, list) and len(partial) == 2 and _is_number(partial[0])):
        raise Bad(f"{where}trainer.partial must be [loss sum, count], got "
                  f"{_short(repr(partial), 60)}")
    _check(partial[1], COUNT, where + "trainer.partial's count")
    try:
        np.random.PCG64().state = trainer.get("rng")
    except (TypeError, ValueError, KeyError, OverflowError, AttributeError):
        raise Bad(f"{where}trainer.rng is not a PCG64 generator's state") from None
    if not (early.get("best") is None or _is_number(early["best"])):
        raise Bad(f"{where}early.best must be a number or null, got "
                  f"{_short(repr(early['best']), 40)}")
    _check(early.get("best_epoch"), Integer(0, len(history)), where + "early.best_epoch")
    _check(early.get("waited"), COUNT, where + "early.waited")
    if not (state.get("initial_loss") is None or _is_number(state["initial_loss"])):
        raise Bad(f"{where}initial_loss must be a number or null")
    check_gemm(state.get("gemm"))
    needed = {"order": ("int64", (n_train,))}
    for name in OPTIMIZERS[config.optimizer].state_names:
        needed[f"opt_{name}"] = "params"
    if config.ema:
        needed["trained_params"] = "params"
    if config.patience:
        needed["best_params"] = "params"
    return needed


def check_gemm(gemm):
    """The GEMM choices a checkpoint keeps (session.gemm_state), or None (older files)."""
    where = "resume state gemm"
    if gemm is None:
        return
    _kind(gemm, dict, where)
    _check(gemm.get("default", "openblas"), Options(BACKENDS), where + ".default")
    for choice in _kind(gemm.get("choices", []), list, where + ".choices"):
        if not (isinstance(choice, list) and len(choice) == 5 and
                all(isinstance(n, int) and not isinstance(n, bool) for n in choice[:3])
                and isinstance(choice[3], str) and choice[4] in BACKENDS):
            raise Bad(f"{where}.choices must be [m, k, n, layout, backend] entries, got "
                      f"{_short(repr(choice), 60)}")


def check_order(order):
    """The shuffled order a resumed trainer gathers by: a permutation of its rows."""
    seen = np.zeros(len(order), bool)
    if len(order) and (order.min() < 0 or order.max() >= len(order)):
        raise Bad("resume state order indexes rows outside the training split")
    seen[order] = True
    if not seen.all():
        raise Bad("resume state order is not a permutation of the training rows")


def check_scaler(arrays, standardize):
    """The standardisation: both arrays or neither, as the settings say, finite, scale > 0."""
    if ("scaler_mean" in arrays) != ("scaler_scale" in arrays):
        raise Bad("holds half a standardisation (scaler_mean and scaler_scale go together)")
    if standardize != ("scaler_mean" in arrays):
        raise Bad(f"its settings {'ask' if standardize else 'do not ask'} for standardized "
                  f"features, it {'holds no' if standardize else 'holds a'} standardisation")
    if not standardize:
        return
    mean, scale = arrays["scaler_mean"], arrays["scaler_scale"]
    if not (np.isfinite(mean).all() and np.isfinite(scale).all() and (scale > 0).all()):
        raise Bad("its standardisation holds non-finite values or a scale <= 0")


def model_bytes(sizes, dtype, mixed):
    """What an MLP of `sizes` allocates: parameters and gradients, and the bfloat16 copy."""
    length = flat_length(sizes, dtype)
    return length * (2 * np.dtype(dtype).itemsize + (2 if mixed else 0))


def plan_arrays(meta, config, sizes, dtype, infos):
    """{entry: (dtype, shape)} of every array to read, checked against the metadata."""
    length = (flat_length(sizes, dtype),)
    wanted = {"params": (dtype, length)}
    for name in ("scaler_mean", "scaler_scale"):  # both or neither: check_scaler
        if name in infos:
            wanted[name] = ("float64", (sizes[0],))
    needed = check_state(meta.get("state", {}), config, meta["dataset"], meta["history"])
    for name, spec in needed.items():
        if f"state_{name}" not in infos:
            raise Bad(f"a resumable checkpoint without its {name} array")
        wanted[f"state_{name}"] = (dtype, length) if spec == "params" else spec
    for name in wanted:
        if name not in infos:
            raise Bad(f"no {name} entry")
    return wanted


def read(zf, path):
    """(meta, config, {entry: array}) of an opened model archive, every part checked."""
    from .plan import check_bytes

    infos = entries(zf)
    meta = read_meta(zf, infos)
    config, sizes, dtype = check_config(meta)
    meta["sizes"], meta["history"] = sizes, meta.get("history", [])
    check_history(meta["history"])
    meta["dataset"] = check_dataset(meta.get("dataset"), sizes)
    meta["versions"] = check_versions(meta.get("versions"))
    wanted = plan_arrays(meta, config, sizes, dtype, infos)
    arrays_bytes = sum(np.dtype(d).itemsize * math.prod(s) for d, s in wanted.values())
    total = model_bytes(sizes, dtype, is_mixed(config.dtype)) + 2 * arrays_bytes
    check_bytes(total, f"{path}: its {'-'.join(map(str, sizes))} model needs "
                f"{size_text(total)} to load")
    try:
        arrays = {name: read_array(zf, infos[name], name, d, s)
                  for name, (d, s) in wanted.items()}
    except Bad as e:
        if str(e).startswith("entry params "):  # the weights of another architecture
            raise Bad(f"weights do not match the architecture {'-'.join(map(str, sizes))} "
                      f"{dtype} ({e})") from None
        raise
    if "state_order" in arrays:
        check_order(arrays["state_order"])
    check_scaler(arrays, config.standardize)
    return meta, config, arrays
