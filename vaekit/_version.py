"""vaekit's version: its own module, so the checkpoint writer (which records it) need not import the package."""

__version__ = "0.1.0"
