"""Architectures, one file per family, generator and discriminator side by side."""
