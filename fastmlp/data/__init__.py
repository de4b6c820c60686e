"""fastmlp.data."""
