"""Random flag values never crash the argument handling: each either builds a valid TrainConfig
or is refused with one line and exit status 2 (checked in-process: no training runs)."""
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastmlp.cli import _train_config, build_parser
from fastmlp.config import TrainConfig
from fastmlp.errors import FastMLPError

OPTIONS = ["--layers", "--epochs", "--batch-size", "--lr", "--threads", "--seed",
           "--val-fraction", "--eval-every", "--dropout", "--augment-shift", "--weight-decay",
           "--warmup", "--momentum", "--patience", "--lr-gamma", "--lr-step-epochs",
           "--optimizer", "--schedule", "--init", "--dtype", "--dataset", "--preset"]

values = st.one_of(
    st.integers(-10**6, 10**6).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["full", "nan", "inf", "-0", "1e-300", "", " ", "0x10", "1_000", "adam",
                     "cosine", "he", "float64", "fast"]),
    st.text(max_size=8))


# capsys is read (and so emptied) at the start of every example.
@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(OPTIONS), values), min_size=1, max_size=4))
def test_random_flag_values_are_accepted_or_refused_in_one_line(capsys, flags):
    argv = ["train"] + [part for option, value in flags for part in (option, value)]
    capsys.readouterr()
    try:
        args = build_parser().parse_args(argv)
        config, _ = _train_config(args)
    except SystemExit as e:
        assert e.code == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and "error" in err
        return
    except FastMLPError as e:
        assert "\n" not in str(e)
        return
    assert isinstance(config, TrainConfig)
    assert config.epochs >= 1 and config.lr > 0 and all(h >= 1 for h in config.layers)


def test_a_flag_value_that_looks_like_a_flag_is_refused(capsys):
    with pytest.raises(SystemExit) as e:
        build_parser().parse_args(["train", "--lr", "--epochs"])
    assert e.value.code == 2
