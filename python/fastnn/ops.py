"""Functional kernels: float32, NHWC, numpy in / numpy out (thin wrappers over _core)."""
from __future__ import annotations
