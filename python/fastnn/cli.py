"""Command line: ``fastnn demo | info | bench`` (also ``python -m fastnn ...``)."""
from __future__ import annotations

import sys


def _info(argv):
    import argparse

    argparse.ArgumentParser(prog="fastnn info", description="build information and a self-check").parse_args(argv)
    import fastnn
    from fastnn import selfcheck

    info = fastnn.build_info()
    print("fastnn", info["version"])
    for k, v in info.items():
        if k != "version":
            print(f"  {k:10s} {v}")
    ok = selfcheck.run(verbose=True)
    return 0 if ok else 1


def _bench(argv):
    from fastnn.bench import main

    return main(argv)


def _demo(argv):
    """The two workbook models: the digit CNN on the bundled MNIST sample (10k train / 2k test),
    then the stock-price LSTM on the bundled AAPL closes (--part picks one or both).

    Measured on the 2-core development machine (AVX-512, 2 threads, otherwise idle): the
    digits part (6 epochs, augmented, seed 2) takes 35.6 s (fit 34.6 s, 5.8 s per epoch) and
    reaches test accuracy 0.9815 (37 errors in 2,000); seeds 0-3 gave 0.9775-0.9825 (0.9835,
    33 errors, for seed 2 since a generator's dropout masks are keyed by the samples drawn
    in the epoch rather than step x fit's batch_size, on a busy machine). The
    stocks part (the workbook's 20 epochs) adds well under 10 s. --quick (1 + 3 epochs)
    takes about 10 s."""
    import argparse

    import fastnn
    from fastnn import demo, stocks

    ap = argparse.ArgumentParser(prog="fastnn demo", description=_demo.__doc__.splitlines()[0])
    ap.add_argument("--part", choices=("digits", "stocks", "all"), default="all",
                    help="which workbook model to run (default: all = digits, then stocks)")
    ap.add_argument("--epochs", type=int, default=None,
                    help=f"digit CNN epochs (default {demo.DEMO_EPOCHS}; {demo.QUICK_EPOCHS} with --quick)")
    ap.add_argument("--stock-epochs", type=int, default=None,
                    help=f"stock LSTM epochs (default {stocks.DEMO_EPOCHS}; {stocks.QUICK_EPOCHS} with --quick)")
    ap.add_argument("--quick", action="store_true", help="a short smoke run (about 10 s)")
    ap.add_argument("--data", default=None, help="MNIST IDX directory or Kaggle CSV instead of the bundled sample")
    ap.add_argument("--stock-data", default=None, help="a price CSV (Date, Close columns) instead of the bundled "
                                                       "AAPL history")
    ap.add_argument("--threads", type=int, default=None, help="number of threads (default: all cores)")
    ap.add_argument("--seed", type=int, default=2)
    ap.add_argument("--no-augment", action="store_true", help="train on the images as they are")
    ap.add_argument("--out", default=".", help="directory for the PNG plots, written when matplotlib is "
                                               "installed (default: the current directory; '' for none)")
    ap.add_argument("--verbose", type=int, default=1, choices=(0, 1, 2))
    ap.add_argument("--train-limit", type=int, default=None, help="use only the first N training images")
    ap.add_argument("--test-limit", type=int, default=None, help="use only the first N test images")
    args = ap.parse_args(argv)
    epochs = args.epochs if args.epochs is not None else (demo.QUICK_EPOCHS if args.quick else demo.DEMO_EPOCHS)
    if epochs < 1:
        ap.error(f"--epochs: expected an integer >= 1, got {epochs}")
    stock_epochs = (args.stock_epochs if args.stock_epochs is not None else
                    (stocks.QUICK_EPOCHS if args.quick else stocks.DEMO_EPOCHS))
    if stock_epochs < 1:
        ap.error(f"--stock-epochs: expected an integer >= 1, got {stock_epochs}")
    if args.threads is not None:
        if args.threads < 1:
            ap.error(f"--threads: expected an integer >= 1, got {args.threads}")
        fastnn.set_num_threads(args.threads)
    for flag, value in (("--train-limit", args.train_limit), ("--test-limit", args.test_limit)):
        if value is not None and value < 1:
            ap.error(f"{flag}: expected an integer >= 1, got {value}")
    import time
    t0 = time.perf_counter()
    if args.part in ("digits", "all"):
        demo.run_mnist(args.data, epochs=epochs, seed=args.seed, augment=not args.no_augment,
                       train_limit=args.train_limit, test_limit=args.test_limit, out_dir=args.out or None,
                       verbose=args.verbose)
    if args.part in ("stocks", "all"):
        if args.part == "all" and args.verbose:
            print("\n--- part 2: the stock-price LSTM ---")
        stocks.run_stocks(args.stock_data, epochs=stock_epochs, seed=args.seed, out_dir=args.out or None,
                          verbose=1 if args.verbose else 0)
    print(f"demo finished in {time.perf_counter() - t0:.1f} s")
    return 0


COMMANDS = {"demo": _demo, "info": _info, "bench": _bench}


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        print("usage: fastnn {demo|info|bench} [options]\n"
              "  demo   train the workbook models (digit CNN, stock LSTM) on the bundled data; --quick for a short run\n"
              "  info   print the build information and self-check every kernel against NumPy\n"
              "  bench  verify and time fastnn against PyTorch, TensorFlow/Keras and JAX (those installed); --quick for a short run")
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    try:
        return COMMANDS[argv[0]](argv[1:])
    except (ValueError, TypeError, OSError, MemoryError) as exc:
        # bad data files, paths or options found after parsing: a message, not a traceback
        print(f"fastnn {argv[0]}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
