"""`python -m fastmlp` is the `fastmlp` command."""
from .cli import console

console()
