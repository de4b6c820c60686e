"""`fastmlp download`: a dataset's four IDX files from its mirrors, checksummed."""
from . import add_command
from .options import add_setting


def add_parser(subparsers):
    parser = add_command(subparsers, "download", description="Download a dataset from its "
                         "public mirrors, verify each file's SHA-256 and write it atomically.")
    add_setting(parser, "dataset", positional=True, help="the dataset to fetch", shown="")
    parser.add_argument("--dest", default=None, metavar="DIR",
                        help="directory to put <dataset>/ in (default: the user cache)")
    return parser


def run(args):
    from ..data.load import download_dataset

    print(download_dataset(args.dataset, args.dest))
