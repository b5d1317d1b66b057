"""The stock-price workbook LSTM, as a reusable recipe (``fastnn demo``, examples/stock_lstm.py).

    from fastnn.stocks import build_stock_lstm, run_stocks
    result = run_stocks()                          # bundled AAPL closes, 2010-01-04 .. 2016-12-30
    result = run_stocks("prices.csv", start=None)  # another CSV (Date, Close columns), all rows

The recipe (the course workbook): daily closing prices; 70/30 temporal split (never
shuffled across time); MinMaxScaler fitted on the training part only (the prices the
training windows and targets cover); windows of the previous 15 days (lookback 15)
predicting the next close; LSTM(20) -> Dense(1); MSE loss; Adam (Keras defaults);
20 epochs; batch 32.

``run_stocks`` prints every epoch's loss, then the train and test RMSE in dollars (after
inverse scaling) beside the RMSE of the naive "tomorrow = today" forecast, says so
plainly when the model does not beat that baseline, and writes a PNG of actual vs
predicted prices when matplotlib is installed and ``out_dir`` is given.

Why the LSTM usually loses to the naive forecast here: a day's close is almost exactly the
previous close plus noise, and about a quarter of the test targets lie above the largest
price the scaler saw in training (scaled values above 1), where the LSTM has never been
fitted; its predictions lag and flatten there. Keras 3 with the same recipe gets train
about $2.4 and test $3.3-4.3 over 5 seeds, against $1.75 for the naive forecast.
"""
from __future__ import annotations

import os
import time

import numpy as np

__all__ = ["build_stock_lstm", "run_stocks", "WORKBOOK_START", "WORKBOOK_END", "DEMO_EPOCHS", "QUICK_EPOCHS"]

WORKBOOK_START = "2010-01-04"
WORKBOOK_END = "2016-12-30"
LOOKBACK = 15
DEMO_EPOCHS = 20   # the workbook's 20 epochs (a few seconds)
QUICK_EPOCHS = 3


def build_stock_lstm(lookback=LOOKBACK, units=20):
    """LSTM(units) -> Dense(1) on (lookback, 1) windows (1,781 parameters for the workbook)."""
    import fastnn as fnn
    from fastnn import layers

    return fnn.Sequential([layers.LSTM(units, input_shape=(lookback, 1)), layers.Dense(1)], name="stock_lstm")


def _select(dates, close, start, end):
    keep = np.ones(len(dates), bool)
    if start is not None:
        keep &= dates >= np.datetime64(start, "D")
    if end is not None:
        keep &= dates <= np.datetime64(end, "D")
    return dates[keep], close[keep]


def run_stocks(data=None, symbol="AAPL", start="default", end="default", epochs=DEMO_EPOCHS, batch_size=32,
               lookback=LOOKBACK, train_fraction=0.7, seed=0, out_dir=None, verbose=1, summary=True,
               date_column="Date", close_column="Close"):
    """Train and evaluate the workbook LSTM; returns a dict of the results.

    data: None for the AAPL history bundled with fastnn, else a CSV file (or a directory
    holding '<symbol>.csv') with a date column and a close column.
    start / end: ISO dates bounding the series (inclusive); "default" means the workbook's
    2010-01-04 .. 2016-12-30 for the bundled data and the whole file for a path; None: no
    bound. verbose: 0 silent, 1 one line per epoch plus the report.

    The result holds train_rmse, test_rmse, naive_train_rmse, naive_test_rmse (dollars),
    beats_naive, above_train_max (fraction of test targets above the training maximum),
    n_days, n_train, n_test, history, fit_seconds, total_seconds, plot (path or None),
    model, and the test dates / actual / predicted prices."""
    import fastnn as fnn
    from fastnn import callbacks, optimizers
    from fastnn.data import MinMaxScaler, sliding_windows, temporal_split
    from fastnn.datasets import load_stock_prices
    from fastnn.metrics import rmse

    say = print if verbose else (lambda *a, **k: None)
    t_start = time.perf_counter()
    fnn.set_seed(seed)
    dates, close = load_stock_prices(symbol=symbol, path=data, date_column=date_column, close_column=close_column)
    if start == "default":
        start = WORKBOOK_START if data is None else None
    if end == "default":
        end = WORKBOOK_END if data is None else None
    dates, close = _select(dates, close, start, end)
    if len(close) < lookback + 3:
        raise ValueError(f"only {len(close)} prices between {start} and {end}; need at least {lookback + 3}")
    prices = close.astype(np.float64).reshape(-1, 1)

    # windows of raw prices, split in time order; the scaler sees only the training part
    x_raw, y_raw = sliding_windows(prices, lookback)
    x_tr_raw, x_te_raw, y_tr_raw, y_te_raw = temporal_split(x_raw, y_raw, train_fraction)
    n_train = len(x_tr_raw)
    scaler = MinMaxScaler().fit(prices[:n_train + lookback])
    x_tr = scaler.transform(x_tr_raw).astype(np.float32)
    x_te = scaler.transform(x_te_raw).astype(np.float32)
    y_tr = scaler.transform(y_tr_raw).astype(np.float32)
    train_max = float(scaler.data_max_[0])
    above = float(np.mean(y_te_raw[:, 0] > train_max))

    say(f"{symbol.upper()} daily closes {dates[0]} .. {dates[-1]}: {len(close)} days "
        f"({'bundled' if data is None else data}); lookback {lookback}; train {n_train} windows, "
        f"test {len(x_te_raw)} windows; fastnn {fnn.__version__}, {fnn.get_num_threads()} threads")
    model = build_stock_lstm(lookback)
    model.compile(optimizer=optimizers.Adam(), loss="mse")
    if verbose and summary:
        model.summary()

    class _EpochLine(callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            say(f"epoch {epoch + 1:2d}/{epochs}: loss {logs['loss']:.6f}")

    t0 = time.perf_counter()
    hist = model.fit(x_tr, y_tr, batch_size=batch_size, epochs=epochs, verbose=0, shuffle=True,
                     callbacks=[_EpochLine()] if verbose else None)
    fit_time = time.perf_counter() - t0

    pred_tr = scaler.inverse_transform(model.predict(x_tr, batch_size=256).astype(np.float64))
    pred_te = scaler.inverse_transform(model.predict(x_te, batch_size=256).astype(np.float64))
    train_rmse = rmse(y_tr_raw, pred_tr)
    test_rmse = rmse(y_te_raw, pred_te)
    naive_train = rmse(y_tr_raw, x_tr_raw[:, -1])   # tomorrow = today
    naive_test = rmse(y_te_raw, x_te_raw[:, -1])
    beats = test_rmse < naive_test

    say(f"\nfit: {fit_time:.2f} s ({fit_time / max(epochs, 1) * 1000:.0f} ms per epoch)")
    say(f"{'':8s}{'LSTM':>10s}{'naive (tomorrow = today)':>28s}")
    say(f"{'train':8s}{'$' + format(train_rmse, '.3f'):>10s}{'$' + format(naive_train, '.3f'):>28s}   RMSE")
    say(f"{'test':8s}{'$' + format(test_rmse, '.3f'):>10s}{'$' + format(naive_test, '.3f'):>28s}   RMSE")
    if beats:
        say(f"The LSTM beats the naive forecast on the test period by ${naive_test - test_rmse:.3f} RMSE.")
    else:
        say(f"The LSTM does NOT beat the naive 'tomorrow = today' forecast on the test period "
            f"(${test_rmse:.3f} vs ${naive_test:.3f} RMSE): a day's close is mostly yesterday's plus noise, "
            f"and {above:.0%} of the test targets lie above the training maximum ${train_max:.2f} the scaler "
            f"saw, where the model was never fitted.")

    test_dates = dates[lookback + n_train:]
    result = {"model": model, "history": hist.history, "train_rmse": train_rmse, "test_rmse": test_rmse,
              "naive_train_rmse": naive_train, "naive_test_rmse": naive_test, "beats_naive": bool(beats),
              "above_train_max": above, "n_days": int(len(close)), "n_train": int(n_train),
              "n_test": int(len(x_te_raw)), "fit_seconds": fit_time, "plot": None,
              "test_dates": test_dates, "test_actual": y_te_raw[:, 0], "test_predicted": pred_te[:, 0]}
    if out_dir is not None:
        path = write_plot(dates[lookback:], y_raw[:, 0], pred_tr[:, 0], pred_te[:, 0], n_train, symbol, out_dir)
        result["plot"] = path
        say(f"wrote {path}" if path else "(matplotlib is not installed: no plot written; pip install 'pyfastnn[plot]')")
    result["total_seconds"] = time.perf_counter() - t_start
    return result


def write_plot(dates, actual, pred_train, pred_test, n_train, symbol, out_dir):
    """Actual vs predicted closes as a PNG in out_dir; returns its path (None without matplotlib)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    os.makedirs(out_dir, exist_ok=True)
    fig, ax = plt.subplots(figsize=(10, 4.5))
    ax.plot(dates, actual, color="black", lw=1.0, label="actual close")
    ax.plot(dates[:n_train], pred_train, color="tab:blue", lw=0.9, label="LSTM (train)")
    ax.plot(dates[n_train:], pred_test, color="tab:red", lw=0.9, label="LSTM (test)")
    ax.axvline(dates[n_train], color="gray", ls="--", lw=0.8)
    ax.set_ylabel("close ($)")
    ax.set_title(f"fastnn LSTM(20): {symbol.upper()} next-day close, actual vs predicted")
    ax.legend(loc="upper left")
    fig.tight_layout()
    path = os.path.join(out_dir, f"stock_lstm_{symbol.lower()}.png")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
