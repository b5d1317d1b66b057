"""float64 NumPy references: norm kernels."""
import numpy as np  # noqa: F401
