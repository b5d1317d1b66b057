"""TensorFlow / Keras 3 as a benchmark peer: tf.function graphs with oneDNN on (the
default of the x86 CPU wheels), Keras models with ``jit_compile=False`` so the graph runs
TensorFlow's own (oneDNN) kernels rather than XLA. Runs inside a peer worker process."""
from __future__ import annotations

import numpy as np

from .workloads import AUGMENT_ARGS, CNN_RMSPROP, LSTM_ADAM

NAME = "tf"


def setup(threads):
    import tensorflow as tf
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    import keras
    return f"{tf.__version__} (Keras {keras.__version__})"


def build(prob, data, weights):
    import tensorflow as tf
    p, w = prob.params, prob.word
    c = tf.constant
    if prob.kind == "gemm":
        a, b = c(data["a"]), c(data["b"])
        f = tf.function(lambda: tf.linalg.matmul(a, b))
        return {"tf": (f, lambda: [f().numpy()])}
    if prob.kind == "conv":
        return {"tf": _conv(tf, p, w, data)}
    if prob.kind == "pool":
        if p["ph"] or p["pw"]:
            return {}          # tf.nn pooling takes only 'VALID' / 'SAME'
        return {"tf": _pool(tf, p, w, data)}
    if prob.kind == "lstm":
        return {"tf": _lstm_op(tf, p, w, data)}
    if prob.kind in ("cnn_train", "cnn_predict", "lstm_train", "lstm_predict"):
        return {"tf": _model(tf, prob, data, weights)}
    if prob.kind == "augment":
        ImageDataGenerator = tf.keras.preprocessing.image.ImageDataGenerator   # Keras 3: the legacy class
        x, mb = data["x"], p["mb"]
        flow = ImageDataGenerator(**AUGMENT_ARGS).flow(x, batch_size=mb, shuffle=False, seed=0)
        plain = ImageDataGenerator().flow(x, batch_size=mb, shuffle=False)
        return {"keras_idg": ((lambda: next(flow)), (lambda: [np.asarray(next(plain), np.float32)]))}
    return {}


def _conv(tf, p, w, data):
    x, wt, b, dy = (tf.constant(data[k]) for k in ("x", "w", "b", "dy"))
    strides = [1, p["sh"], p["sw"], 1]
    pads = [[0, 0], [p["ph"], p["ph"]], [p["pw"], p["pw"]], [0, 0]]
    flat_pads = [v for pair in pads for v in pair]
    if w == "fwd":
        f = tf.function(lambda: tf.nn.bias_add(tf.nn.conv2d(x, wt, strides, pads), b))
        return f, lambda: [f().numpy()]
    if w == "bwdd":
        shape = tf.constant(data["x"].shape, tf.int32)
        f = tf.function(lambda: tf.raw_ops.Conv2DBackpropInput(
            input_sizes=shape, filter=wt, out_backprop=dy, strides=strides, padding="EXPLICIT",
            explicit_paddings=flat_pads))
        return f, lambda: [f().numpy()]
    if w == "bwdw":
        shape = tf.constant(data["w"].shape, tf.int32)
        f = tf.function(lambda: tf.raw_ops.Conv2DBackpropFilter(
            input=x, filter_sizes=shape, out_backprop=dy, strides=strides, padding="EXPLICIT",
            explicit_paddings=flat_pads))
        return f, lambda: [f().numpy()]
    need_dx = bool(p["dx"])

    @tf.function
    def f():
        with tf.GradientTape() as tape:
            tape.watch([x, wt, b])
            y = tf.nn.bias_add(tf.nn.conv2d(x, wt, strides, pads), b)
        return [y] + tape.gradient(y, [x, wt, b] if need_dx else [wt, b], output_gradients=dy)

    def check():
        out = [o.numpy() for o in f()]
        return out if need_dx else [out[0], None, out[1], out[2]]
    return f, check


def _pool(tf, p, w, data):
    x, dy = tf.constant(data["x"]), tf.constant(data["dy"])
    k, s = [p["kh"], p["kw"]], [p["sh"], p["sw"]]
    fn = tf.nn.max_pool2d if w == "max" else tf.nn.avg_pool2d

    @tf.function
    def f():
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = fn(x, k, s, "VALID")
        return y, tape.gradient(y, x, output_gradients=dy)
    return f, lambda: [v.numpy() for v in f()]


def _lstm_op(tf, p, w, data):
    import keras
    layer = keras.layers.LSTM(p["h"], return_sequences=True)
    layer.build((p["mb"], p["t"], p["i"]))
    layer.set_weights([data["kernel"], data["recurrent_kernel"], data["bias"]])
    x, dh = tf.constant(data["x"]), tf.constant(data["dh"])
    if w == "fwd":
        f = tf.function(lambda: layer(x))
        return f, lambda: [f().numpy()]
    vs = layer.trainable_variables

    @tf.function
    def f():
        with tf.GradientTape() as tape:
            tape.watch(x)
            hs = layer(x)
        return [hs] + tape.gradient(hs, [x] + list(vs), output_gradients=dh)
    return f, lambda: [v.numpy() for v in f()]


def build_keras_cnn(keras):
    L = keras.layers
    return keras.Sequential([
        keras.Input((28, 28, 1)),
        L.Conv2D(32, 5, padding="same", activation="relu"), L.Conv2D(32, 5, padding="same", activation="relu"),
        L.MaxPooling2D(2), L.Dropout(0.25),
        L.Conv2D(64, 3, padding="same", activation="relu"), L.Conv2D(64, 3, padding="same", activation="relu"),
        L.MaxPooling2D(2, strides=2), L.Dropout(0.25),
        L.Flatten(), L.Dense(256, activation="relu"), L.Dropout(0.5), L.Dense(10, activation="softmax")])


def _model(tf, prob, data, weights):
    import keras
    p = prob.params
    mb = p["mb"]
    if prob.kind.startswith("cnn"):
        model = build_keras_cnn(keras)
        model.compile(optimizer=keras.optimizers.RMSprop(**CNN_RMSPROP), loss="categorical_crossentropy",
                      metrics=["accuracy"], jit_compile=False)
        nb, nv = prob.per_call, min(mb, 64)
    else:
        model = keras.Sequential([keras.Input((p["t"], p["i"])), keras.layers.LSTM(p["h"]), keras.layers.Dense(1)])
        model.compile(optimizer=keras.optimizers.Adam(**LSTM_ADAM), loss="mse", jit_compile=False)
        nb, nv = prob.per_call, 64
    model.set_weights(weights)
    infer = tf.function(lambda v: model(v, training=False))
    xv = tf.constant(data["x"][:nv])
    check = lambda: [infer(xv).numpy()]  # noqa: E731
    if prob.kind.endswith("predict"):
        xb = tf.constant(data["x"][:mb])
        return (lambda: infer(xb).numpy()), check
    xs = [tf.constant(data["x"][b * mb:(b + 1) * mb]) for b in range(nb)]
    ys = [tf.constant(data["y"][b * mb:(b + 1) * mb]) for b in range(nb)]

    def train():
        for xb, yb in zip(xs, ys):
            model.train_on_batch(xb, yb)
    return train, check
