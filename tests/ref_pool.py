"""float64 NumPy references: pool kernels."""
import numpy as np  # noqa: F401
