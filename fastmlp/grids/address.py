"""The address of an existing Dask scheduler (--scheduler, or the "address" of a
--scheduler-file), checked before anything connects: a word that is no address, a URL of
another protocol or a port out of range is refused in one line, not in Dask's traceback. Dask
is not imported here: the command line checks the flags before it loads anything."""
import ipaddress
import json
import math
import re

from ..errors import FastMLPError

SCHEMES = ("tcp", "tls", "ws", "wss", "ucx")
EXAMPLE = "tcp://HOST:PORT, e.g. tcp://10.0.0.5:8786"
# Seconds to wait for a scheduler to answer as one; a closed port fails at once, a silent one,
# an unreachable host or a server of another protocol at this deadline.
DEFAULT_TIMEOUT = 10.0
MAX_TIMEOUT = 3600.0
_HOSTNAME = re.compile(r"(?=.{1,253}$)[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?"
                       r"(\.[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?)*\.?")


def scheduler_address(text, where="--scheduler"):
    """`text` as Dask takes it (SCHEME://HOST:PORT, the scheme tcp when none is given), or
    FastMLPError naming `where` it came from and what is wrong."""
    def refuse(what):
        return FastMLPError(f"{where} {text!r}: {what}; pass {EXAMPLE}")

    text = str(text)
    scheme, sep, rest = text.strip().partition("://")
    if not sep:
        scheme, rest = "tcp", scheme
    if scheme.lower() not in SCHEMES:
        raise refuse(f"{scheme}:// is not a Dask protocol ({', '.join(SCHEMES)})")
    host, colon, port = rest.rpartition(":")
    if not colon or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise refuse("not HOST:PORT with a port 1-65535")
    if host.startswith("[") and host.endswith("]"):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise refuse(f"{host} is not an IPv6 address") from None
    elif not _HOSTNAME.fullmatch(host):
        raise refuse(f"{host or 'an empty host'!r} is not a host name or address")
    return f"{scheme.lower()}://{host}:{int(port)}"


def scheduler_file_address(path):
    """The checked address a scheduler file (dask scheduler --scheduler-file) holds."""
    try:
        with open(path, encoding="utf-8") as f:
            address = json.load(f)["address"]
    except OSError as e:
        raise FastMLPError(f"--scheduler-file {path}: {e.strerror or e}") from None
    except (ValueError, KeyError, TypeError):
        raise FastMLPError(f"--scheduler-file {path}: not a Dask scheduler file (JSON with "
                           f"an \"address\")") from None
    if not isinstance(address, str):
        raise FastMLPError(f"--scheduler-file {path}: its \"address\" is not a string")
    return scheduler_address(address, f"--scheduler-file {path}: address")


def connect_timeout(seconds):
    """A deadline for reaching a scheduler, in seconds: finite, positive, at most an hour."""
    try:
        value = float(seconds)
    except (TypeError, ValueError):
        value = math.nan
    if not 0 < value <= MAX_TIMEOUT:
        raise FastMLPError(f"--scheduler-timeout {seconds!r}: give seconds in (0, "
                           f"{MAX_TIMEOUT:g}]")
    return value
