"""Early stopping: the best weights by validation accuracy or loss, and when to stop."""
import numpy as np


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
