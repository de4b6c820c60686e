"""The datasets fastmlp knows: their four IDX files, SHA-256 checksums, system directories and
download mirrors. A registry only: finding, checking and loading the files is load.py's job."""
from dataclasses import dataclass
from pathlib import Path

# Every MNIST-style dataset uses these four names; each may be stored as NAME.gz or raw NAME.
TRAIN_IMAGES = "train-images-idx3-ubyte"
TRAIN_LABELS = "train-labels-idx1-ubyte"
TEST_IMAGES = "t10k-images-idx3-ubyte"
TEST_LABELS = "t10k-labels-idx1-ubyte"
FILES = (TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS)

DIGITS = tuple(range(10))
FASHION_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                 "Sneaker", "Bag", "Ankle boot")


@dataclass(frozen=True)
class DatasetSpec:
    """What fastmlp knows about one dataset: checksums, its classes, where a system may hold it,
    mirrors."""

    sha256: dict[str, str]  # file name in FILES -> SHA-256 of its uncompressed bytes
    # The class of each label value 0..K-1, as reports and `fastmlp predict` name it.
    classes: tuple = DIGITS
    system_dirs: tuple[Path, ...] = ()
    mirrors: tuple[str, ...] = ()  # base URLs; the file name NAME.gz is appended
    install_hint: str = ""  # another way to get the files, for the not-found message


DATASETS = {
    "mnist": DatasetSpec(
        sha256={
            TRAIN_IMAGES: "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            TRAIN_LABELS: "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
            TEST_IMAGES: "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            TEST_LABELS: "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        },
        mirrors=(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
        ),
    ),
    # Checksums computed from Debian's dataset-fashion-mnist package (see shipped/README.md).
    "fashion-mnist": DatasetSpec(
        sha256={
            TRAIN_IMAGES: "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
            TRAIN_LABELS: "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
            TEST_IMAGES: "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
            TEST_LABELS: "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        },
        classes=FASHION_NAMES,
        system_dirs=(Path("/usr/share/datasets/fashion-mnist"),),
        mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        install_hint="apt-get install dataset-fashion-mnist",
    ),
}
