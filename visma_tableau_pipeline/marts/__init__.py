"""Dashboard tables: pure functions from entity frames, and Hyper writing."""
