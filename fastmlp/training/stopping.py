"""When a run stops before its last epoch: early stopping (the best weights by validation
accuracy or loss) and the divergence rule."""
import math

import numpy as np

from ..errors import Diverged

# The divergence rule: a run whose mean training loss over an epoch exceeds this many times the
# larger of ln(classes) (the loss of a uniform guess) and its initial loss (the validation loss
# of the model before its first step) has diverged, even while the loss is still finite. The
# reference is the model before training, not the first epoch, whose mean can already have
# exploded at a huge learning rate. Training that works stays far below the limit
# (tests/cli/test_settings_cli.py runs the documented recipes against it).
DIVERGENCE_FACTOR = 10.0


def diverged(loss, initial_loss, n_classes):
    """Whether an epoch's mean training loss says the run diverged (DIVERGENCE_FACTOR)."""
    limit = DIVERGENCE_FACTOR * max(math.log(n_classes), initial_loss)
    return not math.isfinite(loss) or loss > limit


# Inputs larger than this are far from the [0, 1] the default settings are made for: a run
# diverging on them wants them scaled more than a lower learning rate.
LARGE_INPUTS = 10.0


def check_divergence(epoch, loss, initial_loss, n_classes, lr, inputs=None):
    """Raise the one-line error of a diverged run (see `diverged`); inputs: the training
    features as the model takes them (None when standardised), whose scale, looked at only
    then, may be the cause to name."""
    if diverged(loss, initial_loss, n_classes):
        reach = 0.0 if inputs is None or inputs.size == 0 else float(np.abs(inputs).max())
        advice = f"try a lower learning rate than {lr:g}"
        if reach > LARGE_INPUTS:
            advice = (f"the inputs reach {reach:.4g}, far from [0, 1] (only uint8 and uint16 "
                      f"pictures are scaled): divide them (X / {reach:.4g}) or standardize "
                      f"them (standardize=True, --standardize), or {advice}")
        raise Diverged(
            f"training diverged at epoch {epoch} (loss is {loss:.4g}; the limit is "
            f"{DIVERGENCE_FACTOR:g} x the larger of ln({n_classes}) and the "
            f"initial loss {initial_loss:.4g}); {advice}")


class EarlyStopping:
    """Keeps a copy of the best weights by validation accuracy or loss; `stop` once `patience`
    epochs pass without improvement. Without patience it keeps nothing: the run returns its last
    weights."""

    def __init__(self, model, metric, patience):
        self.metric, self.patience = metric, patience
        self.best_params = model.params.copy() if patience else None
        self.best_epoch, self.best, self.waited = 0, None, 0

    def update(self, model, stats):
        if not self.patience:  # off: the run returns its last weights, no copies needed
            return
        value = stats.val_acc if self.metric == "val_acc" else -stats.val_loss
        if self.best is None or value > self.best:
            self.best, self.best_epoch, self.waited = value, stats.epoch, 0
            np.copyto(self.best_params, model.params)
        else:
            self.waited += 1

    @property
    def stop(self):
        return self.patience > 0 and self.waited >= self.patience

    def state(self):
        return {"best": self.best, "best_epoch": self.best_epoch, "waited": self.waited}

    def restore(self, state, arrays):
        self.best, self.best_epoch, self.waited = state["best"], state["best_epoch"], \
            state["waited"]
        if self.patience:
            np.copyto(self.best_params, arrays["best_params"])

    def arrays(self):
        return {} if self.best_params is None else {"best_params": self.best_params}
