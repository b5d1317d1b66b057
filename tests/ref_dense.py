"""float64 NumPy references: dense kernels."""
import numpy as np  # noqa: F401
