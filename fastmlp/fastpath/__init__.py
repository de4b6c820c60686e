"""fastmlp.fastpath."""
