"""Sizes and durations as people write them: "4GiB", "500MB", "75.1 GiB", "12.5 min"."""

_UNITS = (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10))
# Units of a memory limit: SI multiples (MB = 10^6) and binary ones (MiB = 2^20; a bare K, M,
# G or T is binary too, as in ulimit and free).
_SIZE_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
               **{p + s: 2**(10 * i) for i, p in enumerate("kmgt", 1) for s in ("", "ib")}}


def parse_size(size):
    """Bytes from a size: 4GiB, 500MB, 1.5G, "1000000" or an int; ValueError if it is none."""
    if isinstance(size, int) and not isinstance(size, bool):
        value = size
    else:
        text = str(size).strip()
        number = text.rstrip("bBiIkKmMgGtT")
        try:
            value = float(number) * _SIZE_UNITS[text[len(number):].lower()]
        except (ValueError, KeyError):
            raise ValueError(f"{size!r} is not a size (examples: 4GiB, 500MB, 1.5G)") from None
    if not 0 < value < float("inf"):
        raise ValueError(f"{size!r}: a size must be positive")
    return int(value)


def unit_of(n):
    """The binary unit ("GiB", 2**30) that writes `n` bytes best."""
    return next(((u, s) for u, s in _UNITS if n >= s), ("KiB", 2**10))


def size_text(n, unit=None):
    """Bytes as "75.1 GiB" (or in the unit of another size, for a list of parts)."""
    name, scale = unit or unit_of(n)
    return f"{n / scale:.1f} {name}"


def duration_text(seconds):
    """Seconds as "0.263 s", "95 s", "12.5 min", "3.1 h" or "150 days"."""
    for unit, scale, limit in (("s", 1, 120), ("min", 60, 120), ("h", 3600, 48)):
        if seconds < limit * scale:
            return f"{seconds:.3g} s" if unit == "s" else \
                f"{seconds / scale:.1f} {unit}"
    return f"{seconds / 86400:.0f} days"
