"""The digit-recognizer workbook CNN, reproduced with fastnn.

    python examples/mnist_cnn.py --data ../shared/data/mnist --epochs 8
    mpirun -n 2 python examples/mnist_cnn.py --distributed --batch-size 43   # 2 ranks, global batch 86

Conv2D(32,5,same,relu) x2 -> MaxPool2D(2) -> Dropout(.25) -> Conv2D(64,3,same,relu) x2
-> MaxPool2D(2, strides 2) -> Dropout(.25) -> Flatten -> Dense(256, relu) -> Dropout(.5)
-> Dense(10, softmax); RMSprop(1e-3, rho .9, epsilon 1e-8); categorical cross-entropy;
ReduceLROnPlateau(val_accuracy, patience 3, factor .5, min_lr 1e-5); batch 86; pixels in
[0, 1]; 90/10 split; ImageDataGenerator(rotation 10, zoom .1, shifts .1).

Without --data it uses the small MNIST sample bundled with fastnn. The recipe itself
lives in the package (fastnn.demo: build_mnist_cnn, run_mnist), which is also what
`python -m fastnn demo` runs.
"""
from __future__ import annotations

import argparse
import sys

import fastnn as fnn
from fastnn.demo import build_mnist_cnn, run_mnist

build_model = build_mnist_cnn   # the name earlier versions of this script used


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=None, help="directory with the four MNIST IDX files (or a Kaggle CSV); "
                                                 "default: the sample bundled with fastnn")
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--batch-size", type=int, default=86)
    ap.add_argument("--seed", type=int, default=2)
    ap.add_argument("--threads", type=int, default=None, help="number of threads (default: all cores)")
    ap.add_argument("--train-limit", type=int, default=None, help="use only the first N training images")
    ap.add_argument("--no-augment", action="store_true", help="train on the images as they are")
    ap.add_argument("--verbose", type=int, default=1, choices=(0, 1, 2))
    ap.add_argument("--distributed", action="store_true",
                    help="data-parallel over the ranks of an MPI job (mpirun/srun); --batch-size is then per rank")
    ap.add_argument("--out", default=".", help="directory for the PNG plots (written when matplotlib is installed)")
    args = ap.parse_args(argv)
    if args.distributed:
        import fastnn.distributed as dist
        dist.init(threads_per_rank=args.threads)
    elif args.threads:
        fnn.set_num_threads(args.threads)
    run_mnist(args.data, epochs=args.epochs, batch_size=args.batch_size, seed=args.seed,
              train_limit=args.train_limit, augment=not args.no_augment, out_dir=args.out or None, verbose=args.verbose,
              distributed=args.distributed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
