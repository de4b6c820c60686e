"""Hostile model files: each is refused by every reader (checkpoint.load, MLPClassifier.load,
evaluate, predict, export, train --resume) in one FastMLPError line naming the file, before
anything is allocated for it, and nothing is written or replaced; mutated valid files either
load and predict or are refused so (hypothesis)."""
import io
import json
import tracemalloc
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastmlp.classifier import MLPClassifier
from fastmlp.cli import main
from fastmlp.data.scaling import Standardizer
from fastmlp.engine.inference import predict_proba
from fastmlp.engine.model import MLP
from fastmlp.errors import FastMLPError, OutOfMemory
from fastmlp.settings import TrainConfig
from fastmlp.training import checkpoint
from fastmlp.training.loop import train
from tests.helpers import make_dataset

DATA = make_dataset(n_train=60, n_val=20, n_test=20, n_features=16, dtype=np.float32)


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    """The bytes of a resumable checkpoint with every kind of state (AdamW, EMA, patience)."""
    path = tmp_path_factory.mktemp("good") / "good.npz"
    config = TrainConfig(layers=(4,), epochs=2, batch_size=16, optimizer="adamw", ema=0.9,
                         patience=2)
    train(config, DATA, save_path=path)
    return path.read_bytes()


def unpack(data):
    with np.load(io.BytesIO(data)) as npz:
        arrays = {name: npz[name] for name in npz.files}
    return json.loads(arrays.pop("meta").tobytes()), arrays


def pack(meta, arrays):
    buffer = io.BytesIO()
    np.savez(buffer, meta=np.frombuffer(json.dumps(meta).encode(), np.uint8), **arrays)
    return buffer.getvalue()


def edited(edit):
    """A case: the good file with `edit(meta, arrays)` applied."""
    def make(data):
        meta, arrays = unpack(data)
        edit(meta, arrays)
        return pack(meta, arrays)
    return make


def zipped(members, compress=zipfile.ZIP_STORED):
    """A case: an archive of {name: bytes} made by hand."""
    def make(_):
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", compress) as z:
            for name, content in members.items():
                z.writestr(name, content)
        return buffer.getvalue()
    return make


def npy(array):
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, array)
    return buffer.getvalue()


def claiming(data):
    """A final model whose weights' header claims 10**12 of them (it holds eight bytes)."""
    meta, _ = unpack(data)
    meta["state"] = {}
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False,
                                                  "shape": (10**12,)})
    return zipped({"meta.npy": npy(np.frombuffer(json.dumps(meta).encode(), np.uint8)),
                   "params.npy": header.getvalue() + bytes(8)})(data)


def trainer(**changes):
    return edited(lambda m, a: m["state"]["trainer"].update(changes))


def setting(**changes):
    return edited(lambda m, a: m["config"].update(changes))


def record(**changes):
    return edited(lambda m, a: m["dataset"].update(changes))


def first_epoch(**changes):
    return edited(lambda m, a: m["history"][0].update(changes))


def huge(meta, arrays):
    meta["sizes"][1] = 10**12
    meta["config"]["layers"] = [10**12]


def flip_params(data):
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        info = z.getinfo("params.npy")
    middle = info.header_offset + 100 + info.file_size // 2
    data = bytearray(data)
    data[middle:middle + 8] = bytes(b ^ 0xFF for b in data[middle:middle + 8])
    return bytes(data)


def npy_file(_):
    buffer = io.BytesIO()
    np.save(buffer, np.zeros((3, 4)))
    return buffer.getvalue()


CASES = {  # name: (the file's bytes from the good one's, what the line says after its name)
    "npy-array": (npy_file, "an .npy array, not an .npz"),
    "empty": (lambda d: b"", "not a readable .npz model"),
    "truncated": (lambda d: d[:len(d) // 2], "not a readable .npz model"),
    "flipped-weights": (flip_params, "not a readable .npz model"),
    "other-npz": (zipped({"a.npy": npy(np.zeros(3))}), "no meta and params entries"),
    "meta-not-json": (zipped({"meta.npy": npy(np.frombuffer(b"\xff{[", np.uint8)),
                              "params.npy": npy(np.zeros(3, np.float32))}), "not JSON"),
    "meta-deeply-nested": (zipped({"meta.npy": npy(np.frombuffer(b"[" * 100000, np.uint8)),
                                   "params.npy": npy(np.zeros(3, np.float32))}), "not JSON"),
    "meta-a-list": (zipped({"meta.npy": npy(np.frombuffer(b"[1, 2]", np.uint8)),
                            "params.npy": npy(np.zeros(3, np.float32))}),
                    "metadata must be an object"),
    "meta-zip-bomb": (zipped({"meta.npy": npy(np.zeros(80 * 2**20, np.uint8)),
                              "params.npy": npy(np.zeros(3, np.float32))},
                             zipfile.ZIP_DEFLATED), "entry meta declares 80.0 MiB"),
    "many-entries": (zipped({f"a{i}.npy": b"" for i in range(100)}),
                     "an archive of 100 entries"),
    "other-format": (edited(lambda m, a: m.update(format="keras")), "names format 'keras'"),
    "newer-version": (edited(lambda m, a: m.update(version=3)), "upgrade fastmlp"),
    "version-text": (edited(lambda m, a: m.update(version="2")), "version must be an integer"),
    "sizes-1e12": (edited(huge), "its 16-1000000000000-10 model needs"),
    "sizes-zero": (edited(lambda m, a: m["sizes"].__setitem__(0, 0)), "field sizes must be"),
    "sizes-thousands": (edited(lambda m, a: m.update(sizes=[4] * 5000)),
                        "sizes must be a list of 2 to 1002"),
    "sizes-text": (edited(lambda m, a: m.update(sizes="16-4-10")), "sizes must be a list"),
    "sizes-not-layers": (edited(lambda m, a: m["sizes"].__setitem__(1, 5)),
                         "sizes 16-5-10 do not match its settings' layers 4"),
    "dtype-unknown": (edited(lambda m, a: m.update(dtype="float16")), "field dtype must be"),
    "dtype-not-precision": (edited(lambda m, a: m.update(dtype="float64")),
                            "parameters are float64, its settings' precision is float32"),
    "config-a-list": (edited(lambda m, a: m.update(config=[1])), "config must be an object"),
    "config-lr-text": (setting(lr="fast"), "invalid saved settings: lr must be a number"),
    "config-epochs-negative": (setting(epochs=-3), "invalid saved settings: epochs"),
    "params-float64": (edited(lambda m, a: a.update(params=a["params"].astype(np.float64))),
                       "weights do not match the architecture 16-4-10 float32"),
    "params-short": (edited(lambda m, a: a.update(params=a["params"][:-1])),
                     "weights do not match the architecture"),
    "params-2d": (edited(lambda m, a: a.update(params=a["params"][:, None])),
                  "weights do not match the architecture"),
    "params-header-lies": (claiming, "weights do not match the architecture 16-4-10 float32 "
                           "(entry params holds float32 of shape (1000000000000,)"),
    "params-missing": (edited(lambda m, a: a.pop("params")), "no meta and params entries"),
    "history-a-dict": (edited(lambda m, a: m.update(history={})), "history must be a list"),
    "history-lacks-field": (edited(lambda m, a: m["history"][0].pop("val_acc")),
                            "history entry 1 lacks val_acc"),
    "history-extra-field": (first_epoch(colour=1), "unknown field 'colour'"),
    "history-epoch-skipped": (first_epoch(epoch=5), "history entry 1 has epoch 5"),
    "history-text": (first_epoch(train_loss="low"), "train_loss must be a number"),
    "history-accuracy-2": (first_epoch(val_acc=2.0), "val_acc must be in [0, 1]"),
    "dataset-a-list": (edited(lambda m, a: m.update(dataset=[])), "dataset must be an object"),
    "classes-too-few": (record(classes=[0, 1]), "2 classes for 10 outputs"),
    "classes-repeated": (record(classes=[0] * 10), "classes must be distinct"),
    "classes-mixed": (record(classes=[0, "a", 2, 3, 4, 5, 6, 7, 8, 9]), "classes must be"),
    "seed-negative": (record(seed=-1), "dataset.seed must be an integer"),
    "n-train-text": (record(n_train="60"), "dataset.n_train must be an integer"),
    "source-path-number": (record(source={"path": 5}), "source.path must be a non-empty"),
    "image-size-three": (record(source={"path": "x", "image_size": [1, 2, 3]}),
                         "source.image_size must be [width, height]"),
    "versions-a-list": (edited(lambda m, a: m.update(versions=[])), "versions must be"),
    "state-a-list": (edited(lambda m, a: m.update(state=[1])), "state must be an object"),
    "state-no-trainer": (edited(lambda m, a: m["state"].pop("trainer")),
                         "resume state trainer must be an object"),
    "state-rng": (trainer(rng={"bit_generator": "MT19937"}), "trainer.rng is not a PCG64"),
    "state-position": (trainer(position=99), "trainer.position must be an integer in [0, 3]"),
    "state-steps": (trainer(optimizer_steps=-1), "optimizer_steps must be an integer >= 0"),
    "state-partial": (trainer(partial=[0.0]), "trainer.partial must be [loss sum, count]"),
    "state-best-epoch": (edited(lambda m, a: m["state"]["early"].update(best_epoch=7)),
                         "early.best_epoch must be an integer in [0, 2]"),
    "state-waited": (edited(lambda m, a: m["state"]["early"].update(waited="1")),
                     "early.waited must be an integer"),
    "state-gemm": (edited(lambda m, a: m["state"].update(gemm={"default": "cuda"})),
                   "gemm.default must be one of"),
    "state-gemm-choice": (edited(lambda m, a: m["state"]["gemm"].update(choices=[[1, 2]])),
                          "gemm.choices must be [m, k, n, layout, backend]"),
    "state-no-n-train": (record(n_train=None), "dataset record has no n_train"),
    "state-opt-missing": (edited(lambda m, a: a.pop("state_opt_v")), "without its opt_v"),
    "state-opt-shape": (edited(lambda m, a: a.update(state_opt_m=a["state_opt_m"][:5])),
                        "entry state_opt_m holds float32 of shape (5,)"),
    "state-order-outside": (edited(lambda m, a: a["state_order"].__setitem__(0, 10**6)),
                            "order indexes rows outside the training split"),
    "state-order-repeats": (edited(lambda m, a: a["state_order"].__setitem__(0, 1) or
                                   a["state_order"].__setitem__(1, 1)),
                            "order is not a permutation"),
    "state-order-int32": (edited(lambda m, a: a.update(state_order=a["state_order"]
                                                       .astype(np.int32))),
                          "entry state_order holds int32"),
    "scaler-half": (edited(lambda m, a: a.update(scaler_mean=np.zeros(16))),
                    "half a standardisation"),
    "scaler-unasked": (edited(lambda m, a: a.update(scaler_mean=np.zeros(16),
                                                    scaler_scale=np.ones(16))),
                       "settings do not ask for standardized features"),
    "scaler-nan": (edited(lambda m, a: m["config"].update(standardize=True) or
                          a.update(scaler_mean=np.full(16, np.nan), scaler_scale=np.ones(16))),
                   "non-finite values"),
    "scaler-shape": (edited(lambda m, a: m["config"].update(standardize=True) or
                            a.update(scaler_mean=np.zeros(3), scaler_scale=np.ones(3))),
                     "entry scaler_mean holds float64 of shape (3,)"),
}


@pytest.fixture(scope="module")
def files(good, tmp_path_factory):
    folder = tmp_path_factory.mktemp("hostile")
    for name, (make, _) in CASES.items():
        (folder / f"{name}.npz").write_bytes(make(good))
    return folder


def one_line(call, start, words):
    with pytest.raises(FastMLPError) as caught:
        call()
    message = str(caught.value)
    assert "\n" not in message and message.startswith(start) and words in message, message
    return caught.value


@pytest.mark.parametrize("case", CASES)
def test_each_hostile_model_file_is_refused_in_one_line(files, case):
    path = files / f"{case}.npz"
    before = path.read_bytes()
    tracemalloc.start()
    try:
        one_line(lambda: checkpoint.load(path), f"{path}: ", CASES[case][1])
        one_line(lambda: MLPClassifier.load(path), f"{path}: ", CASES[case][1])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20 * 2**20  # nothing allocated for what the file claims
    assert path.read_bytes() == before


def test_the_good_file_loads_resumes_and_predicts(good, tmp_path):
    """The control: the file the cases are made from is whole, and resumes."""
    path = tmp_path / "good.npz"
    path.write_bytes(good)
    saved = checkpoint.load(path)
    assert saved.model.sizes == (16, 4, 10) and sorted(saved.arrays) == [
        "best_params", "opt_m", "opt_v", "order", "trained_params"]
    more = TrainConfig(**{**saved.config.__dict__, "epochs": 3})
    assert len(train(more, DATA, resume=saved).history) == 3
    assert predict_proba(saved.model, DATA.test.x).shape == (20, 10)


def test_a_model_with_its_standardisation_loads(tmp_path):
    model = MLP((16, 4, 10)).initialize("he", np.random.default_rng(0))
    scaler = Standardizer(np.zeros(16), np.ones(16))
    checkpoint.save(tmp_path / "s.npz", model, TrainConfig(layers=(4,), standardize=True), [],
                    {"name": "x"}, scaler=scaler)
    assert checkpoint.load(tmp_path / "s.npz").scaler.mean.shape == (16,)


def test_a_directory_and_a_missing_file(tmp_path):
    one_line(lambda: checkpoint.load(tmp_path), f"{tmp_path}: ", "a directory, not a model")
    one_line(lambda: checkpoint.load(tmp_path / "no.npz"), f"{tmp_path}", "no such model file")


def test_loads_names_what_it_stands_for(good):
    one_line(lambda: checkpoint.loads(good[:100], "rung 3"), "rung 3: ", "not a readable")


def test_a_memory_need_above_what_is_available_is_out_of_memory(files):
    path = files / "sizes-1e12.npz"
    error = one_line(lambda: checkpoint.load(path), f"{path}: ", "GiB to load;")
    assert isinstance(error, OutOfMemory) and error.exit_status == 1


# --- every command, in process ----------------------------------------------------------------

def cli(capsys, *argv):
    """(exit status, stderr) of the command line run in this process."""
    try:
        status = main([str(a) for a in argv])
    except SystemExit as e:  # argparse's errors
        status = e.code
    captured = capsys.readouterr()
    assert captured.out == ""
    return status, captured.err


COMMANDS = {
    "evaluate": lambda model, tmp: ["evaluate", model, "--plot", tmp / "out.png"],
    "predict": lambda model, tmp: ["predict", model, model],
    "export": lambda model, tmp: ["export", model, tmp / "out.onnx"],
    "resume": lambda model, tmp: ["train", "--resume", model, "--quiet", "--out",
                                  tmp / "out.json"],
}


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("case", ["npy-array", "truncated", "sizes-1e12", "config-lr-text",
                                  "state-rng", "meta-zip-bomb"])
def test_every_command_refuses_in_one_line(files, tmp_path, capsys, command, case):
    path = files / f"{case}.npz"
    status, err = cli(capsys, *COMMANDS[command](path, tmp_path))
    assert status == (1 if case == "sizes-1e12" else 2), err
    assert err.count("\n") == 1 and err.startswith(f"fastmlp: error: {path}: "), err
    assert CASES[case][1] in err
    assert not list(tmp_path.iterdir())  # no output written


@pytest.mark.parametrize("command", COMMANDS)
def test_a_directory_is_named_as_one(tmp_path, capsys, command):
    (tmp_path / "dir.npz").mkdir()
    status, err = cli(capsys, *COMMANDS[command](tmp_path / "dir.npz", tmp_path))
    assert status == 2 and err.count("\n") == 1 and "a directory, not a file" in err, err


# --- mutated files (hypothesis) -------------------------------------------------------------

JSON = st.recursive(st.none() | st.booleans() | st.integers(-2**70, 2**70) |
                    st.floats(allow_nan=True) | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=4) |
                    st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=8)


def _places(value, path=()):
    """Every (path) into a JSON document."""
    yield path
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _places(item, path + (key,))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _places(item, path + (i,))


def _at(document, place):
    for key in place:
        document = document[key]
    return document


@st.composite
def mutated(draw, good):
    kind = draw(st.sampled_from(["truncate", "flip", "meta", "number", "drop", "swap"]))
    if kind == "truncate":
        return good[:draw(st.integers(0, len(good) - 1))]
    if kind == "flip":
        data = bytearray(good)
        for _ in range(draw(st.integers(1, 4))):
            data[draw(st.integers(0, len(data) - 1))] ^= draw(st.integers(1, 255))
        return bytes(data)
    meta, arrays = unpack(good)
    if kind == "meta":  # up to three values anywhere in the metadata replaced by any JSON
        for _ in range(draw(st.integers(1, 3))):
            *parents, last = draw(st.sampled_from([p for p in _places(meta) if p]))
            _at(meta, parents)[last] = draw(JSON)
    elif kind == "number":  # a number of the metadata (a size, a count, a step) changed
        numbers = [p for p in _places(meta) if p and isinstance(_at(meta, p), int)]
        *parents, last = draw(st.sampled_from(numbers))
        _at(meta, parents)[last] = draw(st.integers(-2, 100) | st.integers(-2**64, 2**64))
    elif kind == "drop":
        names = sorted(arrays)
        arrays.pop(draw(st.sampled_from(names)))
    else:
        names = sorted(arrays)
        a, b = draw(st.sampled_from(names)), draw(st.sampled_from(names))
        arrays[a], arrays[b] = arrays[b], arrays[a]
    return pack(meta, arrays)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_mutated_model_file_loads_and_predicts_or_is_refused(good, tmp_path, data):
    path = tmp_path / "m.npz"
    path.write_bytes(data.draw(mutated(good)))
    try:
        saved = checkpoint.load(path)
    except FastMLPError as e:
        assert "\n" not in str(e) and str(e).startswith(f"{path}: "), e
        return
    x = np.random.default_rng(0).random((3, saved.model.sizes[0])).astype(saved.model.dtype)
    assert predict_proba(saved.model, x).shape == (3, saved.model.sizes[-1])
