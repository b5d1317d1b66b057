"""Functional kernels: float32, NHWC, numpy in / numpy out (thin wrappers over _core)."""
from __future__ import annotations
from ._core import conv2d, conv2d_backward  # convolution
from ._core import max_pool2d, max_pool2d_backward, avg_pool2d, avg_pool2d_backward  # pool
from ._core import dense, dense_backward, batch_norm, batch_norm_backward, sgd_update, rmsprop_update, adam_update, adagrad_update, adadelta_update, global_norm, clip_by_value_, scale_  # dense/norm/optim
from ._core import relu, sigmoid, tanh, softmax, relu_backward, sigmoid_backward, tanh_backward, softmax_backward, dropout, dropout_backward, softmax_cross_entropy, mse, mae  # activation/dropout/loss
from ._core import lstm_forward, lstm_backward, gru_forward, gru_backward, rnn_forward, rnn_backward  # rnn
