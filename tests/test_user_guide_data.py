"""The user guide's "Your own data" examples, run end to end as written: its CSV, .npz and
picture-folder commands (and the Python that writes the .npz) on small generated files of those
names, each command through the real command line, and what it prints checked."""
import re
import shlex

import numpy as np
import pytest

from tests.helpers import run_cli
from tests.test_readme import FENCE, USER_GUIDE

SPECIES = ("setosa", "versicolor", "virginica")


def section(title):
    text = USER_GUIDE.read_text()
    start = text.index(f"\n## {title}\n")
    end = text.index("\n## ", start + 1)
    return text[start:end]


def example(title):
    """(the shell commands, the Python blocks) of the `### title` part of "Your own data"."""
    text = section("Your own data")
    start = text.index(f"\n### {title}\n")
    end = text.find("\n### ", start + 1)
    part = text[start:end if end > 0 else None]
    blocks = FENCE.findall(part)
    commands = [shlex.split(line) for info, body in blocks if info == ""
                for line in body.splitlines() if line.startswith("fastmlp ")]
    return commands, [body for info, body in blocks if info == "python"]


def run_all(commands, cwd):
    """Each command in turn in `cwd`; every one must succeed. Their outputs, in order."""
    outputs = []
    for words in commands:
        assert words[0] == "fastmlp"
        proc = run_cli(*words[1:], cwd=cwd)
        assert proc.returncode == 0, f"{shlex.join(words)}: {proc.stderr}"
        outputs.append(proc.stdout)
    return outputs


def test_the_csv_example(tmp_path):
    commands, _ = example("A CSV file")
    assert [c[1] for c in commands] == ["train", "evaluate", "predict"]
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 150)
    x = np.array([[5.0, 3.4, 1.5, 0.2], [5.9, 2.8, 4.3, 1.3], [6.6, 3.0, 5.6, 2.0]])[y]
    x = x + rng.normal(scale=0.3, size=x.shape)
    rows = ["sepal_length,sepal_width,petal_length,petal_width,species"]
    rows += [",".join(f"{v:.1f}" for v in r) + f",{SPECIES[c]}" for r, c in zip(x, y)]
    (tmp_path / "iris.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "new-flowers.csv").write_text("\n".join(
        ",".join(f"{v:.1f}" for v in r) for r in x[:5]) + "\n")  # features alone
    _, evaluated, predicted = run_all(commands, tmp_path)
    accuracy = float(re.search(r"iris.csv val: accuracy ([\d.]+)%", evaluated).group(1))
    assert accuracy > 85
    lines = predicted.splitlines()
    assert len(lines) == 5
    for i, line in enumerate(lines):
        assert re.match(rf"new-flowers.csv\[{i}\]: ({'|'.join(SPECIES)}) \(", line), line


def test_the_npz_example(tmp_path):
    commands, python = example("An .npz file")
    rng = np.random.default_rng(1)
    letters = rng.integers(0, 256, (10, 28, 28)).astype(np.uint8)  # one pattern per letter

    def noisy(n):
        labels = rng.integers(0, 10, n)
        noise = rng.integers(0, 40, (n, 28, 28))
        return np.clip(letters[labels] * 0.8 + noise, 0, 255).astype(np.uint8), labels

    images, labels = noisy(600)
    test_images, test_labels = noisy(100)
    namespace = {"images": images, "labels": labels, "test_images": test_images,
                 "test_labels": test_labels}
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(tmp_path)
        exec(python[0], namespace)  # the guide's own Python writes letters.npz
    _, evaluated, predicted = run_all(commands, tmp_path)
    assert re.search(r"letters.npz test: accuracy ([\d.]+)% on 100 samples", evaluated)
    assert float(re.search(r"accuracy ([\d.]+)%", evaluated).group(1)) > 80
    assert "    j  " in evaluated  # the class names the file declares
    import json
    found = json.loads(predicted)
    assert len(found) == 100 and {p["class"] for p in found} <= set("abcdefghij")


def test_the_picture_folder_example(tmp_path):
    image = pytest.importorskip("PIL.Image")
    commands, _ = example("A folder of pictures")
    rng = np.random.default_rng(2)

    def picture(kind, size):
        """A "cat" is a bright disc on dark, a "dog" a dark bar on light; any size."""
        h, w = size
        yy, xx = np.mgrid[:h, :w]
        if kind == "cats":
            a = np.where((yy - h / 2) ** 2 + (xx - w / 2) ** 2 < (min(h, w) / 3) ** 2, 220, 30)
        else:
            a = np.where(abs(xx - w / 2) < w / 8, 20, 230)
        a = np.clip(a + rng.integers(-25, 25, a.shape), 0, 255).astype(np.uint8)
        return image.fromarray(a).convert("RGB")

    for kind, suffix in (("cats", "jpg"), ("dogs", "png")):
        folder = tmp_path / "photos" / kind
        folder.mkdir(parents=True)
        for i in range(24):
            picture(kind, (40 + i, 48)).save(folder / f"{i:03d}.{suffix}")
    picture("cats", (64, 64)).save(tmp_path / "my-cat.jpg")
    _, predicted = run_all(commands, tmp_path)
    assert predicted.startswith("my-cat.jpg: cats ("), predicted
