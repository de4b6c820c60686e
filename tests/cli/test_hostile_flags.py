"""Settings outside any sensible range are refused in one line, before anything runs: the
table's bounds (fastmlp/settings.py) and the ones that need the data (a shift of half the
images' side or more)."""
import pytest

from fastmlp.cli import main


@pytest.mark.parametrize("flags, words", [
    (["--augment-shift", "100"], ["--augment-shift", "[0, 64]"]),
    (["--epochs", "1000000000"], ["--epochs", "[1, 1000000]"]),
    (["--patience", "10000000"], ["--patience"]),
    (["--eval-every", "10000000"], ["--eval-every"]),
    (["--lr-step-epochs", "10000000"], ["--lr-step-epochs"]),
    (["--dropout", "1"], ["--dropout"]),
    (["--label-smoothing", "1.5"], ["--label-smoothing"]),
    (["--augment-rotate", "720"], ["--augment-rotate"]),
    (["--lr", "inf"], ["--lr"]),
    (["--warmup", "5", "--epochs", "2"], ["warmup"]),
    (["--augment-shift", "14", "--layers", "4"], ["augment_shift 14", "28x28", "at most 13"]),
    (["--data", "x.csv", "--image-size", "100000"], ["--image-size", "1-4096"]),
])
def test_a_setting_out_of_range_is_one_line(tmp_path, capsys, flags, words):
    epochs = [] if "--epochs" in flags else ["--epochs", "1"]
    try:
        status = main(["train", "--dry-run", *epochs, *flags])
    except SystemExit as e:  # argparse's usage error, in this process
        status = e.code
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1, err
    for word in words:
        assert word in err[0], err[0]
