"""Datamodules: toy distributions with known densities, and image datasets."""
