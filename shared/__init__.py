"""Whistle's shared library: what every service imports, nothing service-specific."""
