"""float64 NumPy references: optim kernels."""
import numpy as np  # noqa: F401
