"""fastnn.layers: output shapes and parameter counts against Keras's published numbers,
weight layouts and initial values, constructor argument checks, get_config round trips,
and each layer's forward (inside a one-layer model) against a float64 NumPy reference."""
import math

import numpy as np
import pytest

import reference as ref
from helpers import compare

import fastnn as fnn
from fastnn.demo import build_mnist_cnn
from fastnn import layers


def workbook_cnn():
    return build_mnist_cnn()


# What Keras 3 reports for the workbook CNN (model.summary() there).
KERAS_WORKBOOK = [
    ((28, 28, 32), 832), ((28, 28, 32), 25_632), ((14, 14, 32), 0), ((14, 14, 32), 0),
    ((14, 14, 64), 18_496), ((14, 14, 64), 36_928), ((7, 7, 64), 0), ((7, 7, 64), 0),
    ((3136,), 0), ((256,), 803_072), ((256,), 0), ((10,), 2_570),
]


def one_layer(layer, input_shape):
    return fnn.Sequential([layers.InputLayer(shape=input_shape), layer])


# ---------------------------------------------------------------- shapes and counts
def test_workbook_cnn_shapes_and_param_counts():
    model = workbook_cnn()
    assert model.built, "input_shape on the first layer builds the model at once"
    assert len(model.layers) == len(KERAS_WORKBOOK)
    for layer, (shape, count) in zip(model.layers, KERAS_WORKBOOK):
        assert tuple(layer.output_shape) == shape, layer.name
        assert layer.count_params() == count, layer.name
    assert model.count_params() == 887_530
    assert model.output_shape == (None, 10)
    assert sum(w.size for w in model.get_weights()) == 887_530


@pytest.mark.parametrize("layer, in_shape, out_shape, n_params", [
    (lambda: layers.Conv2D(16, (3, 5), strides=2), (11, 13, 3), (5, 5, 16), 3 * 5 * 3 * 16 + 16),
    (lambda: layers.Conv2D(16, (3, 5), strides=2, padding="same"), (11, 13, 3), (6, 7, 16), 736),
    (lambda: layers.Conv2D(4, 1, use_bias=False), (5, 5, 7), (5, 5, 4), 28),
    (lambda: layers.Conv2D(8, 3, strides=(1, 2), padding="same"), (9, 9, 1), (9, 5, 8), 80),
    (lambda: layers.Conv2D(2, 7), (7, 7, 3), (1, 1, 2), 296),
    (lambda: layers.MaxPool2D(2), (11, 13, 4), (5, 6, 4), 0),
    (lambda: layers.MaxPooling2D(3, strides=2, padding="same"), (11, 13, 4), (6, 7, 4), 0),
    (lambda: layers.MaxPool2D((2, 3), strides=1), (6, 6, 2), (5, 4, 2), 0),
    (lambda: layers.AveragePooling2D(2), (11, 13, 4), (5, 6, 4), 0),
    (lambda: layers.AvgPool2D(2, padding="same"), (7, 7, 4), (4, 4, 4), 0),
    (lambda: layers.BatchNormalization(), (5, 5, 32), (5, 5, 32), 128),
    (lambda: layers.BatchNormalization(), (10,), (10,), 40),
    (lambda: layers.Dense(7, use_bias=False), (20,), (7,), 140),
    (lambda: layers.Dense(1), (3,), (1,), 4),
    (lambda: layers.Flatten(), (3, 4, 5), (60,), 0),
    (lambda: layers.Dropout(0.3), (3, 4, 5), (3, 4, 5), 0),
    (lambda: layers.Activation("tanh"), (6,), (6,), 0),
])
def test_layer_shapes_and_counts(layer, in_shape, out_shape, n_params):
    model = one_layer(layer(), in_shape)
    assert model.output_shape == (None,) + out_shape
    assert model.count_params() == n_params
    y = model.predict(np.random.default_rng(0).standard_normal((3,) + in_shape).astype(np.float32))
    assert y.shape == (3,) + out_shape and y.dtype == np.float32


def test_batchnorm_non_trainable_count(capsys):
    model = fnn.Sequential([layers.Dense(8, input_shape=(4,)), layers.BatchNormalization()])
    model.summary()
    out = capsys.readouterr().out
    assert "Total params: 72" in out        # 40 + 32 (Keras)
    assert "Trainable params: 56" in out
    assert "Non-trainable params: 16" in out


def test_lazy_build_from_first_batch():
    model = fnn.Sequential([layers.Dense(5, activation="relu"), layers.Dense(2)])
    assert not model.built
    with pytest.raises(ValueError, match="not built"):
        model.get_weights()
    y = model.predict(np.ones((4, 3), np.float32))
    assert model.built and y.shape == (4, 2)
    assert [w.shape for w in model.get_weights()] == [(3, 5), (5,), (5, 2), (2,)]


def test_input_layer_and_add():
    model = fnn.Sequential()
    model.add(layers.Input(shape=(6,)))
    model.add(layers.Dense(3))
    assert model.built and model.output_shape == (None, 3)
    model.add(layers.Dense(2, activation="softmax"))
    assert model.output_shape == (None, 2) and model.count_params() == 21 + 8
    with pytest.raises(TypeError):
        model.add("dense")


def test_layer_shape_errors():
    with pytest.raises(ValueError, match="larger"):
        fnn.Sequential([layers.Conv2D(2, 5, input_shape=(4, 4, 1))])
    with pytest.raises(ValueError):
        fnn.Sequential([layers.Conv2D(2, 3, input_shape=(8, 8))])      # rank 2 per sample
    with pytest.raises(ValueError):
        fnn.Sequential([layers.MaxPool2D(3, input_shape=(2, 2, 1))])


# ---------------------------------------------------------------- default names
def test_default_names_are_unique_and_snake_case():
    model = workbook_cnn()
    names = [l.name for l in model.layers]
    assert len(set(names)) == len(names)
    assert names[:4] == ["conv2d", "conv2d_1", "max_pooling2d", "dropout"]   # Keras 3's names
    assert names[6] == "max_pooling2d_1" and names[8] == "flatten"
    assert names[-1] == "dense_1" and names[-2] == "dropout_2" and names[-3] == "dense"
    other = fnn.Sequential([layers.BatchNormalization(input_shape=(4, 4, 1)), layers.AveragePooling2D(2),
                            layers.Activation("relu")])
    assert [l.name for l in other.layers] == ["batch_normalization", "average_pooling2d", "activation"]
    assert layers.MaxPool2D is layers.MaxPooling2D and layers.AvgPool2D is layers.AveragePooling2D
    with pytest.raises(ValueError, match="duplicate"):
        fnn.Sequential([layers.Dense(2, name="a", input_shape=(3,)), layers.Dense(2, name="a")])


# ---------------------------------------------------------------- weights: layouts and init
def test_weight_layouts_keras_order():
    model = fnn.Sequential([
        layers.Conv2D(6, (3, 2), input_shape=(8, 9, 4)),
        layers.BatchNormalization(),
        layers.Flatten(),
        layers.Dense(5),
    ])
    shapes = [w.shape for w in model.get_weights()]
    assert shapes == [(3, 2, 4, 6), (6,), (6,), (6,), (6,), (6,), (6 * 8 * 6, 5), (5,)]
    k, b, gamma, beta, mean, var, dk, db = model.get_weights()
    assert all(w.dtype == np.float32 for w in model.get_weights())
    assert not b.any() and not db.any() and not beta.any() and not mean.any()
    assert (gamma == 1).all() and (var == 1).all()
    # glorot_uniform: U(-l, l), l = sqrt(6 / (fan_in + fan_out)), fans of HWIO
    lim = math.sqrt(6.0 / (3 * 2 * 4 + 3 * 2 * 6))
    assert np.abs(k).max() <= lim and np.abs(k).max() > 0.8 * lim
    assert abs(k.std() - lim / math.sqrt(3)) < 0.15 * lim
    lim_d = math.sqrt(6.0 / (288 + 5))
    assert np.abs(dk).max() <= lim_d and abs(dk.std() - lim_d / math.sqrt(3)) < 0.1 * lim_d


def test_initializers_by_name():
    model = fnn.Sequential([layers.Dense(4, kernel_initializer="zeros", bias_initializer="ones",
                                         input_shape=(3,))])
    k, b = model.get_weights()
    assert not k.any() and (b == 1).all()


# ---------------------------------------------------------------- constructor checks
@pytest.mark.parametrize("make, exc", [
    (lambda: layers.Dense(0), ValueError),
    (lambda: layers.Dense(-3), ValueError),
    (lambda: layers.Dense(2.5), TypeError),
    (lambda: layers.Dense("8"), TypeError),
    (lambda: layers.Dense(4, activation="swishy"), ValueError),
    (lambda: layers.Dense(4, input_shape=(0,)), ValueError),
    (lambda: layers.Dense(4, kernel_regularizer="l7"), ValueError),
    (lambda: layers.Dropout(1.5), ValueError),
    (lambda: layers.Dropout(-0.1), ValueError),
    (lambda: layers.Dropout(1.0), ValueError),
    (lambda: layers.Dropout("half"), TypeError),
    (lambda: layers.Conv2D(-1, 3), ValueError),
    (lambda: layers.Conv2D(0, 3), ValueError),
    (lambda: layers.Conv2D(8, 0), ValueError),
    (lambda: layers.Conv2D(8, (3, 3, 3)), ValueError),
    (lambda: layers.Conv2D(8, 3, strides=0), ValueError),
    (lambda: layers.Conv2D(8, 3, padding="full"), ValueError),
    (lambda: layers.Conv2D(8, 3, padding=1), ValueError),
    (lambda: layers.Conv2D(8, 3, data_format="channels_first"), ValueError),
    (lambda: layers.MaxPool2D(0), ValueError),
    (lambda: layers.MaxPool2D(2, strides=-1), ValueError),
    (lambda: layers.MaxPool2D(2, padding="causal"), ValueError),
    (lambda: layers.AveragePooling2D((2, 0)), ValueError),
    (lambda: layers.Activation("nope"), ValueError),
    (lambda: layers.BatchNormalization(momentum=1.5), ValueError),
    (lambda: layers.BatchNormalization(axis=1), ValueError),
    # unknown keyword arguments, as Keras does
    (lambda: layers.Dense(4, units2=3), TypeError),
    (lambda: layers.Conv2D(8, 3, kernal_size=3), TypeError),
    (lambda: layers.Dropout(0.5, probability=0.5), TypeError),
    (lambda: layers.MaxPool2D(2, size=2), TypeError),
    (lambda: layers.Flatten(foo=1), TypeError),
    (lambda: layers.BatchNormalization(eps=1e-3), TypeError),
])
def test_constructor_checks(make, exc):
    with pytest.raises(exc):
        make()


def test_constructor_error_names_argument():
    with pytest.raises(ValueError, match="units"):
        layers.Dense(0)
    with pytest.raises(ValueError, match="rate"):
        layers.Dropout(1.5)
    with pytest.raises(ValueError, match="filters"):
        layers.Conv2D(-1, 3)
    with pytest.raises(ValueError, match="padding"):
        layers.Conv2D(8, 3, padding="full")
    with pytest.raises(ValueError, match="algorithm: expected one of 'auto'.*got 'fft'"):
        layers.Conv2D(8, 3, algorithm="fft")


@pytest.mark.parametrize("algorithm", ["gemm", "winograd_f2x2", "winograd_f4x4", "direct"])
def test_conv2d_layer_uses_its_algorithm(algorithm):
    rs = np.random.default_rng(5)
    x = rs.standard_normal((2, 9, 9, 16)).astype(np.float32)
    layer = layers.Conv2D(16, 3, padding="same", activation="relu", algorithm=algorithm,
                          bias_initializer="glorot_uniform")
    one_layer(layer, x.shape[1:])
    y = layer.forward(x)
    k, b = layer.kernel.value, layer.bias.value
    want = np.maximum(fnn.ops.conv2d(x, k, b, padding="same", algorithm=algorithm), 0)
    np.testing.assert_array_equal(y, want)
    layer.forward(x, training=True)
    dy = rs.standard_normal(y.shape).astype(np.float32)
    layer.backward(dy)
    dz = np.where(y > 0, dy, 0).astype(np.float32)
    np.testing.assert_array_equal(layer.kernel.grad,
                                  fnn.ops.conv2d_backward(dz, x, k, padding="same", algorithm=algorithm)[1])


# ---------------------------------------------------------------- config round trips
@pytest.mark.parametrize("make", [
    lambda: layers.Conv2D(5, (3, 2), strides=(2, 1), padding="same", activation="tanh", use_bias=False),
    lambda: layers.Conv2D(4, 5, padding="same", activation="relu", algorithm="winograd_f2x2"),
    lambda: layers.Dense(7, activation="sigmoid", kernel_regularizer=fnn.regularizers.l2(1e-3)),
    lambda: layers.MaxPool2D(3, strides=2, padding="same"),
    lambda: layers.AveragePooling2D((2, 3)),
    lambda: layers.Dropout(0.4, seed=3),
    lambda: layers.Activation("softmax"),
    lambda: layers.BatchNormalization(momentum=0.9, epsilon=1e-5),
    lambda: layers.Flatten(),
])
def test_get_config_round_trip(make):
    layer = make()
    cfg = layer.get_config()
    clone = type(layer).from_config(dict(cfg))
    assert clone.get_config() == cfg


# ---------------------------------------------------------------- forward vs NumPy
ACT = {"linear": lambda z: z, "relu": ref.relu, "tanh": ref.tanh, "sigmoid": ref.sigmoid,
       "softmax": ref.softmax}


@pytest.mark.parametrize("filters, kernel, strides, padding, act, shape", [
    (4, 3, 1, "same", "relu", (2, 7, 7, 3)),
    (3, (2, 3), 2, "valid", "tanh", (3, 8, 9, 2)),
    (5, 3, 2, "same", "sigmoid", (1, 9, 8, 1)),
    (2, 5, (1, 2), "same", "linear", (2, 6, 7, 3)),
    (6, 1, 1, "valid", "relu", (2, 4, 4, 5)),
])
def test_conv2d_forward(filters, kernel, strides, padding, act, shape):
    rs = np.random.default_rng(1)
    layer = layers.Conv2D(filters, kernel, strides=strides, padding=padding, activation=act,
                          bias_initializer="glorot_uniform")
    model = one_layer(layer, shape[1:])
    x = rs.standard_normal(shape).astype(np.float32)
    k, b = model.get_weights()
    assert b.any()
    expected = ACT[act](ref.conv2d(x, k, b, stride=strides, padding=padding))
    compare(model.predict(x), expected)


@pytest.mark.parametrize("pool, strides, padding, shape", [
    (2, None, "valid", (2, 7, 9, 3)),
    (3, 2, "valid", (1, 9, 9, 2)),
    (3, 1, "same", (2, 5, 6, 2)),
    (2, None, "same", (2, 7, 7, 1)),          # asymmetric 'same' padding (bottom/right)
    ((2, 3), (1, 2), "same", (1, 6, 7, 2)),
    (3, 2, "same", (1, 8, 8, 2)),              # pad 0 top, 1 bottom
])
@pytest.mark.parametrize("kind", ["max", "avg"])
def test_pool_forward_keras_semantics(pool, strides, padding, shape, kind):
    """Keras/TF: 'same' pads bottom/right first; max ignores the padding, average
    divides by the number of real (unpadded) inputs in the window."""
    rs = np.random.default_rng(2)
    cls = layers.MaxPool2D if kind == "max" else layers.AveragePooling2D
    model = one_layer(cls(pool, strides=strides, padding=padding), shape[1:])
    x = rs.standard_normal(shape).astype(np.float32)
    kh, kw = (pool, pool) if np.isscalar(pool) else pool
    st = (kh, kw) if strides is None else ((strides, strides) if np.isscalar(strides) else strides)
    t, b, l, r = ref.conv_padding(shape[1], shape[2], kh, kw, st, padding)
    xp = np.pad(x.astype(np.float64), ((0, 0), (t, b), (l, r), (0, 0)), constant_values=np.nan)
    P = (xp.shape[1] - kh) // st[0] + 1
    Q = (xp.shape[2] - kw) // st[1] + 1
    expected = np.zeros((shape[0], P, Q, shape[3]))
    for p in range(P):
        for q in range(Q):
            win = xp[:, p * st[0]:p * st[0] + kh, q * st[1]:q * st[1] + kw, :]
            expected[:, p, q] = np.nanmax(win, axis=(1, 2)) if kind == "max" else np.nanmean(win, axis=(1, 2))
    y = model.predict(x)
    assert y.shape == (shape[0],) + model.output_shape[1:]
    compare(y, expected)


def test_dense_activation_flatten_forward():
    rs = np.random.default_rng(3)
    model = fnn.Sequential([layers.Flatten(input_shape=(3, 4, 2)), layers.Dense(5, activation="tanh"),
                            layers.Activation("softmax")])
    x = rs.standard_normal((6, 3, 4, 2)).astype(np.float32)
    k, b = model.get_weights()
    b[:] = rs.standard_normal(5)
    model.set_weights([k, b])
    expected = ref.softmax(np.tanh(ref.dense(x.reshape(6, -1), k, b)))
    compare(model.predict(x), expected)


def test_flatten_is_keras_hwc_order():
    x = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5)
    y = one_layer(layers.Flatten(), (3, 4, 5)).predict(x)
    assert np.array_equal(y, x.reshape(2, 60))


def test_batchnorm_inference_uses_moving_stats():
    rs = np.random.default_rng(4)
    model = one_layer(layers.BatchNormalization(epsilon=1e-3), (3, 3, 4))
    gamma, beta = rs.uniform(0.5, 2, 4), rs.standard_normal(4)
    mean, var = rs.standard_normal(4), rs.uniform(0.5, 3, 4)
    model.set_weights([gamma, beta, mean, var])
    x = rs.standard_normal((5, 3, 3, 4)).astype(np.float32)
    y, _, _ = ref.batch_norm(x, gamma, beta, mean, var, training=False, epsilon=1e-3)
    compare(model.predict(x), y)


def test_dropout_identity_at_inference_and_scaled_in_training():
    x = np.ones((64, 50), np.float32)
    layer = layers.Dropout(0.5)
    model = one_layer(layer, (50,))
    assert np.array_equal(model.predict(x), x)
    y = layer.forward(x, training=True)
    kept = y != 0
    assert set(np.unique(y)) <= {0.0, 2.0}
    assert 0.4 < kept.mean() < 0.6
    dx = layer.backward(np.ones_like(x))
    assert np.array_equal(dx, y)     # the same mask, the same 1/(1-rate) scale
