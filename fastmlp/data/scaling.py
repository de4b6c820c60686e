"""How features become the floats a model takes: pictures (uint8, and uint16 for 16-bit ones)
to [0, 1], anything else as given; and, on request, standardisation with the training split's
statistics, which a saved model keeps so that evaluation, prediction and export scale new
inputs the same way."""
from dataclasses import dataclass

import numpy as np

from ..errors import DataError


def to_float(x, dtype, where="inputs", error=DataError):
    """Rows of features as a C-contiguous float array of `dtype`: uint8 (pictures, IDX images)
    divided by 255, uint16 (16-bit pictures) by 65535, other numbers (other integers too: counts,
    codes) as given. Non-numeric, complex or non-finite values, and values beyond `dtype`'s range,
    are refused in one line; the input is never modified."""
    x = np.asarray(x)
    if x.dtype.kind == "u" and x.dtype.itemsize <= 2:  # 8- or 16-bit picture levels
        # Dividing with dtype= converts each level straight to dtype: no float64 temporary.
        return np.divide(x, 255 if x.dtype.itemsize == 1 else 65535, dtype=dtype)
    if x.dtype.kind == "c":
        raise error(f"{where}: Complex data not supported")
    if x.dtype.kind == "O":
        try:
            x = x.astype(np.float64)
        except (TypeError, ValueError):
            raise error(f"{where}: features must be numbers: argument must be a string or a "
                        f"real number, not {type(x.flat[0]).__name__}" if x.size else
                        f"{where}: features must be numbers") from None
    elif x.dtype.kind not in "iufb":
        raise error(f"{where}: features must be numbers, got {x.dtype}")
    given = x
    with np.errstate(over="ignore"):  # a float64 beyond float32's range: said below
        x = np.ascontiguousarray(x, dtype=dtype)
    if x.dtype.kind == "f" and not np.isfinite(x).all():
        at = tuple(np.argwhere(~np.isfinite(x))[0])
        place = f"row {at[0]}, column {at[1]}" if x.ndim == 2 else f"index {list(at)}"
        if np.isfinite(given[at]):
            raise error(f"{where}: {given[at]:.4g} at {place} is beyond the range of "
                        f"{x.dtype} (at most {np.finfo(x.dtype).max:.3g}); scale the features "
                        "down")
        raise error(f"{where}: Input contains NaN or infinity ({place}); fastmlp needs "
                    "finite features")
    return x


@dataclass(frozen=True, eq=False)
class Standardizer:
    """x -> (x - mean) / scale per feature, with the training split's mean and standard
    deviation (a constant feature keeps scale 1, as scikit-learn's StandardScaler does)."""

    mean: np.ndarray  # (n_features,) float64
    scale: np.ndarray  # (n_features,) float64

    @classmethod
    def fit(cls, x):
        """The statistics of x (n, n_features), computed in float64."""
        mean = x.mean(axis=0, dtype=np.float64)
        scale = x.std(axis=0, dtype=np.float64)
        scale[scale == 0] = 1.0
        return cls(mean, scale)

    def apply(self, x):
        """Standardise the float array x (n, n_features) in place, in x's own type, and return
        it; inference, evaluation and export all apply these same operations."""
        if x.shape[1:] != self.mean.shape:
            raise DataError(f"the standardisation was fitted on {len(self.mean)} features, "
                            f"the inputs have {x.shape[1] if x.ndim == 2 else x.shape}")
        x -= self.mean.astype(x.dtype)
        x /= self.scale.astype(x.dtype)
        return x

    def arrays(self):
        """What a checkpoint stores: {name: array}."""
        return {"scaler_mean": self.mean, "scaler_scale": self.scale}

    @classmethod
    def from_arrays(cls, arrays):
        """The Standardizer a checkpoint stored, or None when it stored none."""
        if "scaler_mean" not in arrays:
            return None
        return cls(np.asarray(arrays["scaler_mean"], np.float64),
                   np.asarray(arrays["scaler_scale"], np.float64))
