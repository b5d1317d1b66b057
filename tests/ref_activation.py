"""float64 NumPy references: activation kernels."""
import numpy as np  # noqa: F401
