"""The workbook models as the benchmark builds them (fastnn's side; the peers build the
same architecture and optimizer in fastnn/bench/peer_*.py and load these weights).

How each model workload is timed (the same for every framework; data already in memory):

- ``cnn_train:mb86``: ``model.fit(x, y, batch_size=86, epochs=1, verbose=0,
  shuffle=False)`` over 10 batches, reported per batch. RMSprop(lr 1e-3, rho 0.9,
  epsilon 1e-8), categorical cross-entropy, dropout active. PyTorch: zero_grad,
  forward, loss, backward, step; Keras: train_on_batch; JAX: one jitted step per batch.
- ``cnn_predict:mb86`` / ``mb1``: ``model.predict(x, batch_size=mb)`` against the
  peer's fastest call for that batch (PyTorch inference_mode forward, a tf.function
  of the Keras model, a jitted JAX forward).
- ``lstm_train:mb32_t15_i1_h20``: LSTM(20) + Dense(1), Adam(1e-3), mse; fit over
  20 batches of 32, per batch. ``lstm_predict:mb1_t15_i1_h20``: predict of one window.
- ``augment:mb86_ih28iw28_ic1``: one batch of ``ImageDataGenerator(rotation 10,
  zoom .1, shifts .1).flow`` against Keras's ImageDataGenerator with the same ranges.
"""
from __future__ import annotations

import fastnn

BATCH = 86
AUGMENT_ARGS = dict(rotation_range=10, zoom_range=0.1, width_shift_range=0.1, height_shift_range=0.1)
CNN_RMSPROP = dict(learning_rate=1e-3, rho=0.9, epsilon=1e-8)
LSTM_ADAM = dict(learning_rate=1e-3, beta_1=0.9, beta_2=0.999, epsilon=1e-7)


def build_fastnn_cnn():
    from fastnn import optimizers
    from fastnn.demo import build_mnist_cnn

    model = build_mnist_cnn()
    model.compile(optimizer=optimizers.RMSprop(**CNN_RMSPROP), loss="categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def build_fastnn_lstm(lookback=15, features=1, units=20):
    from fastnn import layers, optimizers

    model = fastnn.Sequential([layers.LSTM(units, input_shape=(lookback, features)), layers.Dense(1)])
    model.compile(optimizer=optimizers.Adam(**LSTM_ADAM), loss="mse")
    return model
