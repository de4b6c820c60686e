"""Outputs that would replace each other or an input: two flags naming one file by any spelling
(relative and absolute, ./x, a symlink, a hard link), an output naming the file the command
reads; refused in one line before anything runs, nothing written or replaced. Default names
two runs share are made distinct."""
import os

import pytest

from fastmlp.cli import main
from fastmlp.cli.options import free_name


def run(argv, capsys):
    try:
        status = main(argv)
    except SystemExit as e:  # argparse's usage error, in this process
        status = e.code
    return status, capsys.readouterr().err.strip().splitlines()


def snapshot(directory):
    return {p.name: p.read_bytes() for p in directory.iterdir() if p.is_file()}


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data.csv").write_text("a,label\n1,0\n2,1\n")
    (tmp_path / "old.json").write_text("{}")
    os.link(tmp_path / "old.json", tmp_path / "hard.json")
    os.symlink(tmp_path / "old.json", tmp_path / "soft.json")
    (tmp_path / "m.npz").write_bytes(b"not read: refused before")
    return tmp_path


@pytest.mark.parametrize("argv, words", [
    (["train", "--out", "x.json", "--save", "x.json"], ["--out and --save", "x.json"]),
    (["train", "--out", "./x.npz", "--save", "x.npz"], ["--out and --save"]),
    (["train", "--out", "{dir}/x.npz", "--save", "x.npz"], ["--out and --save"]),
    (["train", "--out", "sub/../x.npz", "--save", "x.npz"], ["--out and --save"]),
    (["train", "--out", "soft.json", "--save", "old.json"], ["--out and --save"]),
    (["train", "--out", "hard.json", "--save", "old.json"], ["--out and --save"]),
    (["train", "--data", "data.csv", "--save", "./data.csv"], ["--save", "--data file"]),
    (["train", "--data", "data.csv", "--out", "data.csv"], ["--out", "--data file"]),
    (["bench", "--json", "r.json", "--csv", "./r.json"], ["--json and --csv"]),
    (["bench", "--json", "r.png", "--plot", "{dir}/r.png"], ["--json and --plot"]),
    (["evaluate", "m.npz", "--plot", "m.npz"], ["--plot", "MODEL.npz file"]),
    (["evaluate", "m.npz", "--data", "data.csv", "--plot", "data.csv"], ["--data file"]),
    (["plot", "old.json", "-o", "hard.json"], ["--output", "RUN.json file"]),
    (["export", "m.npz", "./m.npz"], ["OUT", "MODEL.npz file"]),
])
def test_outputs_that_collide_are_refused_and_nothing_is_written(workdir, capsys, argv, words):
    (workdir / "sub").mkdir()
    before = snapshot(workdir)
    status, err = run([a.replace("{dir}", str(workdir)) for a in argv], capsys)
    assert status == 2 and len(err) == 1, err
    for word in words:
        assert word in err[0], err[0]
    assert snapshot(workdir) == before


def test_the_default_checkpoint_of_an_interrupted_run_never_replaces_another(tmp_path):
    first = tmp_path / "fastmlp-interrupted.npz"
    assert free_name(first) == first
    first.write_bytes(b"an earlier run's")
    assert free_name(first) == tmp_path / "fastmlp-interrupted-2.npz"
    (tmp_path / "fastmlp-interrupted-2.npz").symlink_to(tmp_path / "gone")  # even dangling
    assert free_name(first) == tmp_path / "fastmlp-interrupted-3.npz"
