"""Grade Jupyter notebooks of a PyTorch course with hidden tests, behind a sandbox boundary."""

__version__ = "0.1.0"
