"""Using a model: its accuracy and loss on a split, class probabilities, and the confusion
matrix with per-class precision and recall."""
import numpy as np

from ..errors import FastMLPError
from ..runtime.threads import kernel_threads
from .bfloat16 import bfloat16_copy
from .forward import forward
from .gemm import OPENBLAS
from .kernels import xent_count
from .workspace import EVAL_ROWS, Workspace


def evaluate(model, ws, x, y, first=None, gemm=OPENBLAS):
    """(accuracy, mean cross-entropy) of the model on x (N, n_in), y (N,), in chunks of ws.rows
    rows (ws: a forward-only Workspace), the matmuls on `gemm`. With `first`
    (fastpath.sparse.SparseRows), x is the row indices of its CSR copy of the inputs; for a
    mixed-precision model x is in bfloat16. One kernel gives the loss and the count and writes
    no gradient."""
    correct, loss_sum = 0, 0.0
    with kernel_threads(min(ws.rows, len(y))):
        for start in range(0, len(y), ws.rows):
            stop = min(start + ws.rows, len(y))
            chunk = ws.rows_view(stop - start)
            forward(model, chunk, x[start:stop], first=first, gemm=gemm)
            loss, hits = xent_count(chunk.logits, y[start:stop], chunk.loss_partial,
                                    chunk.count_partial)
            correct += hits
            loss_sum += loss
    return correct / len(y), loss_sum / len(y)


def logits(model, x):
    """The model's logits (N, n_out) for inputs x (N, n_in), in chunks of up to EVAL_ROWS rows
    (in bfloat16 for a mixed-precision model, as it trained)."""
    x = np.ascontiguousarray(x, dtype=model.dtype)
    if x.ndim != 2 or x.shape[1] != model.sizes[0]:
        raise FastMLPError(f"the model takes {model.sizes[0]} features per sample, got inputs "
                           f"of shape {x.shape}")
    out = np.empty((len(x), model.sizes[-1]), model.dtype)
    if len(x) == 0:
        return out
    ws = Workspace(model, min(EVAL_ROWS, len(x)), backward=False, gather=False)
    with kernel_threads(ws.rows):
        for start in range(0, len(x), ws.rows):
            stop = min(start + ws.rows, len(x))
            chunk = bfloat16_copy(x[start:stop]) if model.mixed else x[start:stop]
            out[start:stop] = forward(model, ws.rows_view(stop - start), chunk)
    return out


def predict_proba(model, x):
    z = logits(model, x).astype(np.float64)
    z -= z.max(axis=1, keepdims=True)
    p = np.exp(z)
    return p / p.sum(axis=1, keepdims=True)


def confusion_matrix(y_true, y_pred, n_classes):
    """counts[i, j]: samples of class i predicted as j."""
    return np.bincount(np.asarray(y_true) * n_classes + np.asarray(y_pred),
                       minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def precision_recall(counts):
    """Per-class precision and recall from a confusion matrix (0 where undefined)."""
    hits = np.diag(counts).astype(np.float64)
    predicted, actual = counts.sum(axis=0), counts.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(predicted > 0, hits / predicted, 0.0)
        recall = np.where(actual > 0, hits / actual, 0.0)
    return precision, recall


def evaluation_report(counts, title, classes=None):
    """What `fastmlp evaluate` prints for a confusion matrix (confusion_matrix): the accuracy,
    each class's precision, recall and support, and the matrix itself, the classes named as
    `classes` names them (0..K-1 when not given)."""
    precision, recall = precision_recall(counts)
    total = int(counts.sum())
    accuracy = f"{100 * np.trace(counts) / total:.2f}%" if total else "n/a"
    names = [str(c) for c in (range(len(counts)) if classes is None
                              else np.asarray(classes).tolist())]
    width = max(5, *map(len, names))
    lines = [f"{title}: accuracy {accuracy} on {total} samples",
             f"{'class':>{width}}  precision  recall  support"]
    lines += [f"{name:>{width}}  {100 * precision[k]:8.2f}%  {100 * recall[k]:5.2f}%  "
              f"{row.sum():>7}" for k, (name, row) in enumerate(zip(names, counts))]
    lines.append("confusion matrix (rows: true class, columns: predicted, in the order above)")
    lines += [" ".join(f"{v:5d}" for v in row) for row in counts]
    return "\n".join(lines) + "\n"
