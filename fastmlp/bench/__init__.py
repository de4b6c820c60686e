"""fastmlp.bench."""
