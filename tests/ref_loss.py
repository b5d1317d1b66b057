"""float64 NumPy references: loss kernels."""
import numpy as np  # noqa: F401
