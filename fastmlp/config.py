"""Transitional: TrainConfig now lives in fastmlp.settings (removed once every import moved)."""
from .data import load_dataset_for as dataset_for  # noqa: F401
from .settings import TrainConfig  # noqa: F401
