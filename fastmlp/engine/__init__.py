"""fastmlp.engine."""
