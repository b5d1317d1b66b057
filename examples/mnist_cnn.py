"""The digit-recognizer workbook CNN, reproduced with fastnn.

    python examples/mnist_cnn.py --data ../shared/data/mnist --epochs 8

Conv2D(32,5,same,relu) x2 -> MaxPool2D(2) -> Dropout(.25) -> Conv2D(64,3,same,relu) x2
-> MaxPool2D(2, strides 2) -> Dropout(.25) -> Flatten -> Dense(256, relu) -> Dropout(.5)
-> Dense(10, softmax); RMSprop(1e-3, rho .9, epsilon 1e-8); categorical cross-entropy;
ReduceLROnPlateau(val_accuracy, patience 3, factor .5, min_lr 1e-5); batch 86; pixels in
[0, 1]; 90/10 split; ImageDataGenerator(rotation 10, zoom .1, shifts .1).

Without --data it uses the small MNIST sample bundled with fastnn.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

import fastnn as fnn
from fastnn import callbacks, layers, optimizers
from fastnn.data import ImageDataGenerator, to_categorical, train_test_split
from fastnn.datasets import load_mnist
from fastnn.metrics import confusion_matrix


def build_model():
    return fnn.Sequential([
        layers.Conv2D(32, 5, padding="same", activation="relu", input_shape=(28, 28, 1)),
        layers.Conv2D(32, 5, padding="same", activation="relu"),
        layers.MaxPool2D(2),
        layers.Dropout(0.25),
        layers.Conv2D(64, 3, padding="same", activation="relu"),
        layers.Conv2D(64, 3, padding="same", activation="relu"),
        layers.MaxPool2D(2, strides=2),
        layers.Dropout(0.25),
        layers.Flatten(),
        layers.Dense(256, activation="relu"),
        layers.Dropout(0.5),
        layers.Dense(10, activation="softmax"),
    ])


def run(data=None, epochs=8, batch_size=86, seed=2, train_limit=None, out_dir=".", verbose=1, augment=True):
    fnn.set_seed(seed)
    (x_all, y_all), (x_test, y_test) = load_mnist(data)
    if train_limit:
        x_all, y_all = x_all[:train_limit], y_all[:train_limit]
    x_all = (x_all.astype(np.float32) / 255.0)[..., None]
    x_test = (x_test.astype(np.float32) / 255.0)[..., None]
    y_all_1h = to_categorical(y_all, 10)
    x_tr, x_val, y_tr, y_val = train_test_split(x_all, y_all_1h, test_size=0.1, random_state=seed)
    print(f"train {len(x_tr)}, validation {len(x_val)}, test {len(x_test)} images; "
          f"fastnn {fnn.__version__} ({fnn.build_info()['isa']}, {fnn.get_num_threads()} threads)")

    model = build_model()
    model.compile(optimizer=optimizers.RMSprop(learning_rate=1e-3, rho=0.9, epsilon=1e-8),
                  loss="categorical_crossentropy", metrics=["accuracy"])
    if verbose:
        model.summary()
    lr_cb = callbacks.ReduceLROnPlateau(monitor="val_accuracy", patience=3, verbose=1, factor=0.5, min_lr=1e-5)
    t0 = time.perf_counter()
    if augment:
        gen = ImageDataGenerator(rotation_range=10, zoom_range=0.1, width_shift_range=0.1,
                                 height_shift_range=0.1, seed=seed)
        flow = gen.flow(x_tr, y_tr, batch_size=batch_size)
        hist = model.fit(flow, epochs=epochs, steps_per_epoch=len(x_tr) // batch_size,
                         validation_data=(x_val, y_val), callbacks=[lr_cb], verbose=verbose)
    else:
        hist = model.fit(x_tr, y_tr, batch_size=batch_size, epochs=epochs, validation_data=(x_val, y_val),
                         callbacks=[lr_cb], verbose=verbose)
    fit_time = time.perf_counter() - t0
    val_loss, val_acc = model.evaluate(x_val, y_val, batch_size=256)
    result = {"val_accuracy": val_acc, "fit_seconds": fit_time, "seconds_per_epoch": fit_time / max(epochs, 1),
              "history": hist.history}
    print(f"\nfit: {fit_time:.1f} s ({fit_time / max(epochs, 1):.1f} s per epoch); validation accuracy {val_acc:.4f}")
    if len(x_test):
        probs = model.predict(x_test, batch_size=256)
        pred = probs.argmax(1)
        test_acc = float((pred == y_test).mean())
        cm = confusion_matrix(y_test, pred, num_classes=10)
        result.update(test_accuracy=test_acc, confusion_matrix=cm)
        print(f"test accuracy {test_acc:.4f} on {len(x_test)} images")
        print("confusion matrix (rows = true digit, columns = predicted):")
        print("     " + " ".join(f"{j:5d}" for j in range(10)))
        for i in range(10):
            print(f"{i:3d}  " + " ".join(f"{v:5d}" for v in cm[i]))
        _plots(x_test, y_test, probs, cm, out_dir)
    return result


def _plots(x_test, y_test, probs, cm, out_dir):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("(matplotlib not installed: no plots written; pip install 'pyfastnn[plot]')")
        return
    os.makedirs(out_dir, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6, 5))
    im = ax.imshow(cm, cmap="Blues")
    ax.set_xlabel("predicted digit")
    ax.set_ylabel("true digit")
    ax.set_xticks(range(10))
    ax.set_yticks(range(10))
    for i in range(10):
        for j in range(10):
            ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=7,
                    color="white" if cm[i, j] > cm.max() / 2 else "black")
    fig.colorbar(im)
    ax.set_title("fastnn digit CNN: confusion matrix (test set)")
    fig.tight_layout()
    p1 = os.path.join(out_dir, "mnist_confusion_matrix.png")
    fig.savefig(p1, dpi=110)
    plt.close(fig)
    pred = probs.argmax(1)
    wrong = np.nonzero(pred != y_test)[0]
    worst = wrong[np.argsort(-probs[wrong, pred[wrong]])][:6]
    fig, axes = plt.subplots(1, max(len(worst), 1), figsize=(2 * max(len(worst), 1), 2.4))
    for ax, i in zip(np.atleast_1d(axes), worst):
        ax.imshow(x_test[i, :, :, 0], cmap="gray_r")
        ax.set_title(f"pred {pred[i]} ({probs[i, pred[i]]:.2f})\ntrue {y_test[i]}", fontsize=8)
        ax.axis("off")
    fig.tight_layout()
    p2 = os.path.join(out_dir, "mnist_worst_errors.png")
    fig.savefig(p2, dpi=110)
    plt.close(fig)
    print(f"wrote {p1} and {p2}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=None, help="directory with the four MNIST IDX files (or a Kaggle CSV)")
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--batch-size", type=int, default=86)
    ap.add_argument("--seed", type=int, default=2)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--no-augment", action="store_true")
    ap.add_argument("--out", default=".", help="directory for the PNG plots")
    args = ap.parse_args(argv)
    if args.threads:
        fnn.set_num_threads(args.threads)
    run(args.data, epochs=args.epochs, batch_size=args.batch_size, seed=args.seed, out_dir=args.out,
        augment=not args.no_augment)
    return 0


if __name__ == "__main__":
    sys.exit(main())
