"""float64 NumPy references: conv kernels."""
import numpy as np  # noqa: F401
