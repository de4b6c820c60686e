"""The one check between a label and the memory it indexes: the loss kernels and the fused pass
index a row's logits (and write its gradient) by its label, so each checks its labels first.
Data is checked where it enters (data/classes.py, data/dataset.py); this is the last line."""
import numba


@numba.njit(inline="always")
def check_labels(y, k):
    """Raise IndexError unless every label of y is in [0, k): the loss kernels index a row's
    logits by its label, and a label out of range would read (and its gradient write) memory
    the row does not own. One serial pass over the labels before the parallel loop, which a
    raise inside would keep from running in parallel; data is checked where it enters
    (data/classes.py), so this never fires on a valid run."""
    for i in range(y.shape[0]):
        if y[i] < 0 or y[i] >= k:
            raise IndexError("a label is outside 0..K-1, K the number of classes (logits' "
                             "columns)")
