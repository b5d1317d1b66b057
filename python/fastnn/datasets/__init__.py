"""Datasets: MNIST digits and daily stock prices, with small real samples bundled.

- ``load_mnist(path=None)`` -> ``(x_train, y_train), (x_test, y_test)``: uint8 images
  (N, 28, 28) and uint8 labels, as Keras's ``mnist.load_data()`` returns them.
- ``load_stock_prices(symbol="AAPL", path=None, date_column="Date", close_column="Close")``
  -> ``(dates, close)``: datetime64[D] and float32, sorted by date.

Bundled data (python/fastnn/datasets/data/, see README.md there): the first 10,000
training and first 2,000 test images of MNIST (Y. LeCun, C. Cortes, C. J. C. Burges;
CC BY-SA 3.0) as gzip IDX files, and AAPL daily prices 2000-01-03..2018-04-30 from Yahoo
Finance. Nothing here uses pickle.

Keras's spelling ``fastnn.datasets.mnist.load_data()`` reads (and when absent downloads,
SHA-256 checked) Keras's full mnist.npz in $FASTNN_HOME/datasets; see datasets/mnist.py.
"""
from ._mnist import load_mnist
from ._stocks import load_stock_prices

__all__ = ["load_mnist", "load_stock_prices", "data_dir", "mnist"]


def __getattr__(name):
    if name == "mnist":
        import importlib
        return importlib.import_module(".mnist", __name__)
    raise AttributeError(f"module 'fastnn.datasets' has no attribute {name!r}")


def data_dir() -> str:
    """The directory holding the bundled data files."""
    from ._mnist import DATA_DIR
    return DATA_DIR
