"""The stock-price workbook LSTM, reproduced with fastnn.

    python examples/stock_lstm.py                       # bundled AAPL closes, 2010-01-04 .. 2016-12-30
    python examples/stock_lstm.py --data prices.csv --symbol IBM --start 2012-01-01

AAPL daily closes (1,762 trading days), 70/30 temporal split, MinMaxScaler fitted on the
training part only, windows of the previous 15 closes -> the next close, LSTM(20) ->
Dense(1), MSE, Adam, 20 epochs, batch 32. Prints every epoch's loss, the train and test
RMSE in dollars beside the naive "tomorrow = today" forecast's, and writes a PNG of actual
vs predicted prices when matplotlib is installed. The recipe lives in the package
(fastnn.stocks: build_stock_lstm, run_stocks), which `python -m fastnn demo` also runs.
"""
from __future__ import annotations

import argparse
import sys

import fastnn as fnn
from fastnn.stocks import DEMO_EPOCHS, LOOKBACK, run_stocks


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=None, help="a CSV with Date and Close columns (or a directory holding "
                                                 "<SYMBOL>.csv); default: the AAPL history bundled with fastnn")
    ap.add_argument("--symbol", default="AAPL", help="the symbol (rows of a multi-symbol CSV; file name in a directory)")
    ap.add_argument("--date-column", default="Date")
    ap.add_argument("--close-column", default="Close")
    ap.add_argument("--start", default="default", help="first date (ISO); default: 2010-01-04 for the bundled "
                                                       "data, the whole file otherwise")
    ap.add_argument("--end", default="default", help="last date (ISO); default: 2016-12-30 for the bundled data")
    ap.add_argument("--epochs", type=int, default=DEMO_EPOCHS)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lookback", type=int, default=LOOKBACK)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None, help="number of threads (default: all cores)")
    ap.add_argument("--out", default=".", help="directory for the PNG plot (written when matplotlib is installed; "
                                               "'' for none)")
    ap.add_argument("--verbose", type=int, default=1, choices=(0, 1))
    args = ap.parse_args(argv)
    if args.epochs < 1:
        ap.error(f"--epochs: expected an integer >= 1, got {args.epochs}")
    if args.threads:
        fnn.set_num_threads(args.threads)
    res = run_stocks(args.data, symbol=args.symbol, start=args.start, end=args.end, epochs=args.epochs,
                     batch_size=args.batch_size, lookback=args.lookback, seed=args.seed, out_dir=args.out or None,
                     verbose=args.verbose, date_column=args.date_column, close_column=args.close_column)
    print(f"finished in {res['total_seconds']:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
