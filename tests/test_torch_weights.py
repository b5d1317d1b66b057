"""PyTorch state dicts into fastnn models: the same predictions as the torch module."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from fastnn import Sequential, layers  # noqa: E402
from fastnn.interop.torch_weights import from_torch_state_dict  # noqa: E402

pytestmark = pytest.mark.torch


class _Cnn(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = torch.nn.Conv2d(1, 8, 5, padding=2)
        self.bn = torch.nn.BatchNorm2d(8, eps=1e-3)
        self.c2 = torch.nn.Conv2d(8, 6, 3, padding=1)
        self.fc = torch.nn.Linear(6 * 7 * 7, 10)

    def forward(self, x):
        x = torch.nn.functional.max_pool2d(torch.relu(self.c1(x)), 2)
        x = torch.nn.functional.max_pool2d(torch.relu(self.c2(self.bn(x))), 2)
        return torch.softmax(self.fc(torch.flatten(x, 1)), -1)


def _fastnn_cnn():
    return Sequential([layers.Conv2D(8, 5, padding="same", activation="relu", input_shape=(28, 28, 1)),
                       layers.MaxPool2D(2), layers.BatchNormalization(),
                       layers.Conv2D(6, 3, padding="same", activation="relu"), layers.MaxPool2D(2),
                       layers.Flatten(), layers.Dense(10, activation="softmax")])


def test_cnn_same_predictions():
    torch.manual_seed(0)
    net = _Cnn().eval()
    with torch.no_grad():
        net.bn.running_mean.uniform_(-0.5, 0.5)
        net.bn.running_var.uniform_(0.5, 1.5)
        net.bn.weight.uniform_(0.5, 1.5)
        net.bn.bias.uniform_(-0.5, 0.5)
    m = _fastnn_cnn()
    report = from_torch_state_dict(m, net.state_dict())
    assert [r[1] for r in report] == ["c1", "bn", "c2", "fc"]
    x = np.random.default_rng(0).random((4, 28, 28, 1), np.float32)
    with torch.no_grad():
        ref = net(torch.from_numpy(x.transpose(0, 3, 1, 2))).numpy()
    np.testing.assert_allclose(m.predict(x), ref, atol=1e-5, rtol=0)


def test_stacked_lstm_and_bidirectional_gru():
    torch.manual_seed(1)
    lstm = torch.nn.LSTM(3, 5, num_layers=2, batch_first=True)
    head = torch.nn.Linear(5, 1)
    sd = {**{"rnn." + k: v for k, v in lstm.state_dict().items()}, **{"head." + k: v for k, v in head.state_dict().items()}}
    m = Sequential([layers.LSTM(5, return_sequences=True, input_shape=(7, 3)), layers.LSTM(5), layers.Dense(1)])
    report = from_torch_state_dict(m, sd)
    assert report[1][2][0] == "rnn.weight_ih_l1"
    x = np.random.default_rng(1).random((4, 7, 3), np.float32)
    with torch.no_grad():
        y, _ = lstm(torch.from_numpy(x))
        ref = head(y[:, -1]).numpy()
    np.testing.assert_allclose(m.predict(x), ref, atol=1e-5, rtol=0)
    gru = torch.nn.GRU(3, 4, batch_first=True, bidirectional=True)
    b = Sequential([layers.Bidirectional(layers.GRU(4, return_sequences=True), input_shape=(7, 3))])
    from_torch_state_dict(b, gru.state_dict())
    with torch.no_grad():
        y, _ = gru(torch.from_numpy(x))
    np.testing.assert_allclose(b.predict(x), y.numpy(), atol=1e-5, rtol=0)


def test_mismatches_are_value_errors():
    net = _Cnn()
    with pytest.raises(ValueError, match="shape"):
        from_torch_state_dict(Sequential([layers.Conv2D(8, 3, input_shape=(28, 28, 1))]),
                              {"c1.weight": net.c1.weight, "c1.bias": net.c1.bias})
    with pytest.raises(ValueError, match="unmatched"):
        from_torch_state_dict(Sequential([layers.Conv2D(8, 5, input_shape=(28, 28, 1))]), net.state_dict())
    with pytest.raises(ValueError, match="left"):
        from_torch_state_dict(_fastnn_cnn(), {"c1.weight": net.c1.weight, "c1.bias": net.c1.bias})
    with pytest.raises(ValueError, match="mapping"):
        from_torch_state_dict(_fastnn_cnn(), net.state_dict(), mapping={"nope": "c1"})
    with pytest.raises(TypeError):
        from_torch_state_dict(_fastnn_cnn(), [1, 2])
