"""The stock-price workbook (fastnn.stocks, examples/stock_lstm.py, `fastnn demo --part stocks`)
on a small number of epochs: data selection, the temporal split, the scaler fitted on the
training part only, RMSE in dollars against an independent computation, the naive
baseline, the honest sentence, the CLI and another CSV via --data."""
from __future__ import annotations

import os
import re
import runpy

import numpy as np
import pytest

import fastnn as fnn
from fastnn import cli, stocks
from fastnn.datasets import load_stock_prices

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _workbook_series():
    dates, close = load_stock_prices()
    keep = (dates >= np.datetime64("2010-01-04")) & (dates <= np.datetime64("2016-12-30"))
    return dates[keep], close[keep].astype(np.float64)


def test_workbook_model_is_keras_sized():
    model = stocks.build_stock_lstm()
    assert model.input_shape == (None, 15, 1) and model.output_shape == (None, 1)
    assert model.count_params() == 1781   # LSTM(20): 1,760 + Dense(1): 21


def test_run_stocks_end_to_end(capsys):
    res = stocks.run_stocks(epochs=2, verbose=1, summary=False)
    out = capsys.readouterr().out
    dates, close = _workbook_series()
    assert len(close) == 1762 and res["n_days"] == 1762
    n = 1762 - 15
    assert res["n_train"] == int(0.7 * n) and res["n_train"] + res["n_test"] == n
    # per-epoch losses
    losses = [float(v) for v in re.findall(r"^epoch +\d+/2: loss (\S+)$", out, re.M)]
    assert len(losses) == 2 and losses == pytest.approx(res["history"]["loss"], abs=5.1e-7)
    # the naive baseline, computed here independently: the target day's close vs the previous close
    n_tr = res["n_train"]
    target = close[15:]
    prev = close[14:-1]
    naive_te = np.sqrt(np.mean((target[n_tr:] - prev[n_tr:]) ** 2))
    naive_tr = np.sqrt(np.mean((target[:n_tr] - prev[:n_tr]) ** 2))
    assert res["naive_test_rmse"] == pytest.approx(naive_te, rel=1e-6)
    assert res["naive_train_rmse"] == pytest.approx(naive_tr, rel=1e-6)
    assert 1.6 < naive_te < 1.9      # the figure: $1.75
    # test RMSE in dollars from the returned predictions
    np.testing.assert_allclose(res["test_actual"], target[n_tr:], rtol=1e-6)
    rmse_te = np.sqrt(np.mean((res["test_predicted"] - target[n_tr:]) ** 2))
    assert res["test_rmse"] == pytest.approx(rmse_te, rel=1e-6)
    assert 0 < res["train_rmse"] < 30 and 0 < res["test_rmse"] < 60
    assert res["test_dates"][0] == dates[15 + n_tr] and len(res["test_dates"]) == res["n_test"]
    # the scaler saw only the training part: the test targets above its maximum
    train_max = close[:n_tr + 15].max()
    assert res["above_train_max"] == pytest.approx(np.mean(target[n_tr:] > train_max))
    assert 0.2 < res["above_train_max"] < 0.35
    # the report
    row = re.search(r"^test +\$(\d+\.\d{3}) +\$(\d+\.\d{3}) +RMSE$", out, re.M)
    assert row and float(row.group(1)) == pytest.approx(res["test_rmse"], abs=6e-4)
    assert float(row.group(2)) == pytest.approx(naive_te, abs=6e-4)
    assert re.search(r"^train +\$\d+\.\d{3} +\$\d+\.\d{3} +RMSE$", out, re.M)
    if res["test_rmse"] >= naive_te:
        assert not res["beats_naive"] and "does NOT beat the naive" in out
    else:
        assert res["beats_naive"] and "beats the naive" in out


def test_run_stocks_is_silent_and_deterministic(capsys):
    a = stocks.run_stocks(epochs=1, verbose=0, seed=3)
    b = stocks.run_stocks(epochs=1, verbose=0, seed=3)
    assert capsys.readouterr().out == ""
    assert a["test_rmse"] == b["test_rmse"] and a["train_rmse"] == b["train_rmse"]
    assert set(a["history"]) == {"loss", "learning_rate"} and a["plot"] is None


def _write_csv(path, n=120, seed=0):
    rs = np.random.default_rng(seed)
    days = np.datetime64("2020-01-01") + np.arange(n)
    price = 50 + np.cumsum(rs.normal(0, 1, n))
    with open(path, "w") as fh:
        fh.write("date,open,close\n")
        for d, p in zip(days, price):
            fh.write(f"{d},{p - 0.5:.4f},{p:.4f}\n")
    return days, price


def test_example_script_with_another_csv(tmp_path, capsys):
    days, price = _write_csv(tmp_path / "prices.csv")
    mod = runpy.run_path(os.path.join(ROOT, "examples", "stock_lstm.py"))
    assert mod["run_stocks"] is stocks.run_stocks
    rc = mod["main"](["--data", str(tmp_path / "prices.csv"), "--symbol", "XYZ", "--epochs", "1", "--out", ""])
    out = capsys.readouterr().out
    assert rc == 0
    assert f"{days[0]} .. {days[-1]}: 120 days" in out
    n = 120 - 15
    n_tr = int(0.7 * n)
    naive = np.sqrt(np.mean((price[15:][n_tr:] - price[14:-1][n_tr:]) ** 2))
    row = re.search(r"^test +\$(\d+\.\d{3}) +\$(\d+\.\d{3}) +RMSE$", out, re.M)
    assert row and float(row.group(2)) == pytest.approx(naive, abs=1e-3)
    # a date range on another CSV
    res = stocks.run_stocks(str(tmp_path / "prices.csv"), start=str(days[20]), end=str(days[99]), epochs=1,
                            verbose=0)
    assert res["n_days"] == 80
    with pytest.raises(ValueError, match="need at least"):
        stocks.run_stocks(str(tmp_path / "prices.csv"), start=str(days[0]), end=str(days[5]), epochs=1, verbose=0)


def test_plot_written_when_matplotlib_is_installed(tmp_path, capsys):
    res = stocks.run_stocks(epochs=1, verbose=1, summary=False, out_dir=str(tmp_path))
    out = capsys.readouterr().out
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert res["plot"] is None and "matplotlib is not installed" in out and os.listdir(tmp_path) == []
    else:
        assert res["plot"] == str(tmp_path / "stock_lstm_aapl.png") and os.path.getsize(res["plot"]) > 1000


def test_demo_command_stocks_part(capsys):
    rc = cli.main(["demo", "--part", "stocks", "--stock-epochs", "1", "--out", ""])
    out = capsys.readouterr().out
    assert rc == 0
    assert "1762 days" in out and "epoch  1/1: loss" in out and "naive (tomorrow = today)" in out
    assert "MNIST" not in out
    assert re.search(r"demo finished in \d+\.\d s", out)
    with pytest.raises(SystemExit):
        cli.main(["demo", "--part", "nope"])
    with pytest.raises(SystemExit):
        cli.main(["demo", "--stock-epochs", "0"])
