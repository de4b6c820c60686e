"""fastmlp.training."""
