"""A model trained in Keras, served by fastnn.

Trains the digit CNN for one epoch in Keras 3 (PyTorch backend) on the bundled MNIST
sample, saves it as ``.keras``, loads the file into fastnn, checks that both predict
the same, and prints the batch-1 latency of each (median of repeated calls).

    pip install keras torch h5py && python examples/keras_served.py
"""
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np  # noqa: E402


def median_latency(fn, x, repeats=200):
    fn(x)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(x)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main():
    try:
        import keras
    except ImportError:
        sys.exit("this example needs Keras 3: pip install keras torch h5py")
    import fastnn as fnn
    from fastnn.datasets import load_mnist

    (x, y), (xt, yt) = load_mnist()
    x = (x / 255.0).astype("float32")[..., None]
    xt = (xt / 255.0).astype("float32")[..., None]
    K = keras.layers
    km = keras.Sequential([keras.Input((28, 28, 1)),
                           K.Conv2D(32, 5, padding="same", activation="relu"), K.MaxPooling2D(2),
                           K.Conv2D(64, 3, padding="same", activation="relu"), K.MaxPooling2D(2),
                           K.Flatten(), K.Dense(128, activation="relu"), K.Dense(10, activation="softmax")])
    km.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    km.fit(x, y, batch_size=64, epochs=1, verbose=2)
    path = os.path.join(tempfile.mkdtemp(), "digits.keras")
    km.save(path)

    fm = fnn.models.load_keras(path) if hasattr(fnn.models, "load_keras") else \
        __import__("fastnn.interop.keras_format", fromlist=["x"]).load_keras(path)
    pk = np.asarray(km.predict(xt, verbose=0))
    pf = fm.predict(xt)
    print(f"largest difference of the predicted probabilities: {np.max(np.abs(pk - pf)):.2e}")
    print(f"test accuracy: Keras {np.mean(pk.argmax(1) == yt):.4f}, fastnn {np.mean(pf.argmax(1) == yt):.4f}")
    one = xt[:1]
    tk = median_latency(lambda a: km.predict_on_batch(a), one)
    tf_ = median_latency(fm.predict, one)
    print(f"batch-1 latency (median): Keras {tk * 1e6:.0f} us, fastnn {tf_ * 1e6:.0f} us ({tk / tf_:.1f}x)")


if __name__ == "__main__":
    main()
