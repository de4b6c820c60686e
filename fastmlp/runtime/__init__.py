"""fastmlp.runtime."""
