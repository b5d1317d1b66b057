"""Benchmarks vs PyTorch, TensorFlow/Keras and JAX: `python bench/run.py [--quick]` (same as `fastnn bench`)."""
import sys

from fastnn.bench import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
