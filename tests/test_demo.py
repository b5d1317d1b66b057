"""`fastnn demo` / fastnn.demo / examples/mnist_cnn.py on tiny settings (the full demo
run, 6 epochs on the bundled sample, is measured by hand: see python/fastnn/cli.py)."""
import os
import re
import runpy
import subprocess
import sys

import numpy as np
import pytest

from fastnn import cli, demo

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _matrix_rows(out):
    """The 10 rows of the printed confusion matrix as int arrays."""
    lines = out.splitlines()
    start = next(i for i, l in enumerate(lines) if l.startswith("confusion matrix"))
    header = lines[start + 1].split()
    assert header == [str(j) for j in range(10)]
    rows = [list(map(int, lines[start + 2 + i].split())) for i in range(10)]
    assert [r[0] for r in rows] == list(range(10))
    return np.array([r[1:] for r in rows])


def test_build_mnist_cnn_is_the_workbook_model():
    model = demo.build_mnist_cnn()
    assert model.count_params() == 887_530
    assert model.input_shape == (None, 28, 28, 1) and model.output_shape == (None, 10)


def test_demo_command_tiny_run(capsys, tmp_path):
    rc = cli.main(["demo", "--part", "digits", "--epochs", "1", "--train-limit", "1000", "--test-limit", "400", "--verbose", "2",
                   "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert rc == 0
    assert "train 900, validation 100, test 400 images" in out
    assert re.search(r"^10/10 - .*val_accuracy: ", out, re.M), out      # 900 // 86 steps
    m = re.search(r"test accuracy: (\d\.\d{4}) on 400 images", out)
    assert m, out
    cm = _matrix_rows(out)
    assert cm.sum() == 400
    assert float(m.group(1)) == pytest.approx(np.trace(cm) / 400, abs=1e-4)
    assert re.search(r"validation accuracy: \d\.\d{4} on 100 images", out)
    assert re.search(r"demo finished in \d+\.\d s", out)
    try:
        import matplotlib  # noqa: F401
        assert sorted(os.listdir(tmp_path)) == ["mnist_confusion_matrix.png", "mnist_worst_errors.png"]
    except ImportError:
        assert "matplotlib is not installed" in out and os.listdir(tmp_path) == []


def test_run_mnist_result_and_silence(capsys):
    res = demo.run_mnist(epochs=1, train_limit=600, test_limit=300, augment=False, verbose=0)
    assert capsys.readouterr().out == ""
    cm = res["confusion_matrix"]
    assert cm.shape == (10, 10) and cm.sum() == 300
    assert res["test_accuracy"] == pytest.approx(np.trace(cm) / 300)
    assert 0.0 <= res["val_accuracy"] <= 1.0
    assert set(res["history"]) == {"loss", "accuracy", "val_loss", "val_accuracy", "learning_rate"}
    assert len(res["history"]["loss"]) == 1 and res["fit_seconds"] > 0


def test_python_m_fastnn_demo_help():
    res = subprocess.run([sys.executable, "-m", "fastnn", "demo", "--help"], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr
    assert "--quick" in res.stdout and "--epochs" in res.stdout


def test_cli_usage_lists_demo(capsys):
    assert cli.main(["--help"]) == 0
    assert "demo" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        cli.main(["demo", "--epochs", "x"])
    with pytest.raises(SystemExit):
        cli.main(["demo", "--epochs", "0"])


def test_example_script_wrapper(capsys):
    """examples/mnist_cnn.py is a thin argparse wrapper over fastnn.demo."""
    mod = runpy.run_path(os.path.join(ROOT, "examples", "mnist_cnn.py"), run_name="mnist_cnn_example")
    assert mod["run_mnist"] is demo.run_mnist
    with pytest.raises(SystemExit):
        mod["main"](["--help"])
    help_text = capsys.readouterr().out
    assert "--data" in help_text and "--epochs" in help_text
    rc = mod["main"](["--epochs", "1", "--train-limit", "400", "--no-augment", "--verbose", "0", "--out", ""])
    assert rc == 0
