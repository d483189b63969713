"""The Dagster layer: thin definitions over the plain functions of the other packages."""
