"""Daily stock prices from a CSV (csv module + numpy; no pandas).

Decisions:
- path=None: the bundled AAPL.csv (Yahoo Finance daily history 2000-01-03..2018-04-30,
  4,610 rows); symbol must then be 'AAPL' (any case), else ValueError naming what is
  bundled.
- path is a file: any CSV with a header that holds date_column and close_column
  (matched exactly after trimming spaces, else case-insensitively, so Kaggle's
  'date'/'close' match the defaults). If the CSV also has a 'symbol' (or 'ticker')
  column, as Kaggle's NYSE prices.csv does, only the rows of `symbol` are kept.
  path is a directory: the file '<symbol>.csv' in it.
- Dates: ISO 'YYYY-MM-DD' (a time of day after it is allowed and dropped); close: finite
  numbers. Missing columns, short rows, unparsable dates, non-numeric or non-finite
  prices raise ValueError naming the file, the line and the column. Blank lines are
  skipped. The result is sorted by date (stable; duplicate dates are kept).
"""
from __future__ import annotations

import os

import numpy as np

from ._mnist import DATA_DIR

_BUNDLED = {"AAPL": "AAPL.csv"}
MAX_CSV_BYTES = 1 << 30
_SYMBOL_COLUMNS = ("symbol", "ticker")


def _column(header, name, path, what):
    stripped = [h.strip() for h in header]
    if name in stripped:
        return stripped.index(name)
    low = [h.lower() for h in stripped]
    if name.strip().lower() in low:
        return low.index(name.strip().lower())
    raise ValueError(f"{path}: no {what} column {name!r}; the header has {', '.join(map(repr, stripped))}")


def _first_bad(values, ok, path, lines, column, what):
    i = int(np.flatnonzero(~ok)[0])
    raise ValueError(f"{path}: line {lines[i]}, column {column!r}: {what}, got {str(values[i])!r}")


def load_stock_prices(symbol="AAPL", path=None, date_column="Date", close_column="Close"):
    """Daily closing prices: ``(dates, close)`` as datetime64[D] and float32, sorted by date.

    path=None reads the bundled AAPL history; otherwise a CSV file (or a directory holding
    '<symbol>.csv') with a date column and a close column."""
    import csv

    if not isinstance(symbol, str) or not symbol:
        raise TypeError(f"symbol: expected a non-empty string, got {symbol!r}")
    for arg, value in (("date_column", date_column), ("close_column", close_column)):
        if not isinstance(value, str) or not value.strip():
            raise TypeError(f"{arg}: expected a non-empty column name, got {value!r}")
    filter_symbol = True
    if path is None:
        key = symbol.upper()
        if key not in _BUNDLED:
            raise ValueError(f"symbol: {symbol!r} is not bundled (bundled: {', '.join(sorted(_BUNDLED))}); "
                             "pass path= to read another CSV")
        path = os.path.join(DATA_DIR, _BUNDLED[key])
        filter_symbol = False
    path = os.fspath(path)
    if os.path.isdir(path):
        path = os.path.join(path, f"{symbol}.csv")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such file")
    import io
    from .._archive import open_regular
    fh, _ = open_regular(path, "load_stock_prices", max_bytes=MAX_CSV_BYTES)  # FIFOs, devices refused
    with fh:
        raw = fh.read(MAX_CSV_BYTES + 1)
    if len(raw) > MAX_CSV_BYTES:
        raise ValueError(f"{path}: more than {MAX_CSV_BYTES} bytes: refused")
    if b"\x00" in raw:
        raise ValueError(f"{path}: the CSV holds NUL bytes (a binary file?)")
    try:
        rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline="")))
    except (csv.Error, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: not a readable CSV ({e})") from None
    if not rows:
        raise ValueError(f"{path}: empty file, expected a header with {date_column!r} and {close_column!r}")
    header, body = rows[0], rows[1:]
    di = _column(header, date_column, path, "date")
    ci = _column(header, close_column, path, "close")
    si = None
    if filter_symbol:
        low = [h.strip().lower() for h in header]
        si = next((low.index(c) for c in _SYMBOL_COLUMNS if c in low), None)
    need = max(di, ci, si if si is not None else 0) + 1
    lines = np.arange(2, len(body) + 2)  # line numbers (the header is line 1)
    lengths = np.fromiter(map(len, body), dtype=np.int64, count=len(body))
    nonblank = lengths > 0
    body = [r for r, keep in zip(body, nonblank) if keep]
    lines, lengths = lines[nonblank], lengths[nonblank]
    short = lengths < need
    if short.any():
        i = int(np.flatnonzero(short)[0])
        raise ValueError(f"{path}: line {lines[i]} has {lengths[i]} field(s), expected at least {need} "
                         f"(for columns {header[di].strip()!r} and {header[ci].strip()!r})")
    if si is not None:
        syms = np.char.upper(np.char.strip(np.array([r[si] for r in body], dtype=str)))
        keep = syms == symbol.strip().upper()
        if not keep.any():
            have = np.unique(syms)
            raise ValueError(f"{path}: no rows for symbol {symbol!r} (the file has {len(have)} symbol(s), e.g. "
                             f"{', '.join(have[:5])})")
        body = [r for r, k in zip(body, keep) if k]
        lines = lines[keep]
    if not body:
        raise ValueError(f"{path}: no data rows")
    date_s = np.char.strip(np.array([r[di] for r in body], dtype=str))
    close_s = np.char.strip(np.array([r[ci] for r in body], dtype=str))
    dname, cname = header[di].strip(), header[ci].strip()
    try:
        dates = date_s.astype("datetime64[D]")
        ok = ~np.isnat(dates) & (np.char.str_len(date_s) >= 10)
    except ValueError:
        ok = np.array([_is_date(s) for s in date_s], dtype=bool)  # error path only: find the row
        dates = None
    if not ok.all():
        _first_bad(date_s, ok, path, lines, dname, "expected a date YYYY-MM-DD")
    if dates is None:
        raise ValueError(f"{path}: column {dname!r}: could not parse the dates as YYYY-MM-DD")
    try:
        close = close_s.astype(np.float64)
    except ValueError:
        ok = np.array([_is_number(s) for s in close_s], dtype=bool)
        _first_bad(close_s, ok, path, lines, cname, "expected a number")
    ok = np.isfinite(close)
    if not ok.all():
        _first_bad(close_s, ok, path, lines, cname, "expected a finite price")
    order = np.argsort(dates, kind="stable")
    return dates[order], close[order].astype(np.float32)


def _is_date(s):
    try:
        d = np.datetime64(s, "D")
    except ValueError:
        return False
    return not np.isnat(d) and len(s) >= 10


def _is_number(s):
    try:
        float(s)
    except ValueError:
        return False
    return True
