"""A long fuzzing run of the model loader, outside the test suite: hypothesis mutates a valid
resumable checkpoint (tests/training/test_modelfile.py's strategy: truncation, flipped bytes,
metadata values replaced by any JSON, arrays dropped or swapped) many times; each file must
load, predict and resume (or be refused by the resume in one line), or be refused by the
loader in one FastMLPError line. Anything else is printed with the file that caused it.

    PYTHONPATH=. python dev/fuzz_modelfile.py 5000   # examples; ~0.01 s each
"""
import collections
import sys
import tempfile
import tracemalloc
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastmlp.engine.inference import predict_proba
from fastmlp.errors import FastMLPError
from fastmlp.settings import TrainConfig
from fastmlp.training import checkpoint
from fastmlp.training.loop import train
from tests.training.test_modelfile import DATA, mutated

FOLDER = Path(tempfile.mkdtemp(prefix="fastmlp-fuzz-"))
GOOD = FOLDER / "good.npz"
train(TrainConfig(layers=(4,), epochs=2, batch_size=16, optimizer="adamw", ema=0.9,
                  patience=2), DATA, save_path=GOOD)


OUTCOMES = collections.Counter()


def one_line(error, path):
    assert "\n" not in str(error) and str(error).startswith(f"{path}"), error
    OUTCOMES[" ".join(str(error)[len(str(path)) + 2:].split()[:4])] += 1


@settings(max_examples=int(sys.argv[1]), deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
@given(data=st.data())
def fuzz(data):
    path = FOLDER / "m.npz"
    path.write_bytes(data.draw(mutated(GOOD.read_bytes())))
    tracemalloc.start()
    try:
        saved = checkpoint.load(path)
    except FastMLPError as e:
        one_line(e, path)
        return
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert peak < 50 * 2**20, peak
    x = np.random.default_rng(0).random((3, saved.model.sizes[0])).astype(saved.model.dtype)
    assert predict_proba(saved.model, x).shape == (3, saved.model.sizes[-1])
    OUTCOMES["(loaded)"] += 1
    if saved.state and saved.config.epochs - len(saved.history) <= 3:
        try:
            train(None, DATA, resume=saved)
            OUTCOMES["(resumed)"] += 1
        except FastMLPError as e:
            assert "\n" not in str(e), e
            OUTCOMES["resume refused: " + " ".join(str(e).split()[:4])] += 1


if __name__ == "__main__":
    fuzz()
    print(f"{sys.argv[1]} examples: every file loaded or was refused in one line")
    for outcome, count in OUTCOMES.most_common(40):
        print(f"{count:6d}  {outcome}")
