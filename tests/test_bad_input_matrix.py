import os
import re
import subprocess
import sys

import pytest


def test_bad_input_matrix_in_a_child_process():
    """Every ops function x every array argument x malformed variants (dtypes, ranks,
    zero sizes, NaN/Inf, layouts, read-only, 2**31-row views), then the ops' scalar
    arguments and element-count overflow, every layer constructor, models, data helpers,
    dataset loaders, models.load and the CLI (tests/bad_input_api.py): no crash, only
    documented exceptions or results. A crash kills the child, not the run."""
    here = os.path.dirname(__file__)
    res = subprocess.run([sys.executable, os.path.join(here, "bad_input_matrix.py")], capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, f"exit {res.returncode}\n{res.stdout[-5000:]}\n{res.stderr[-3000:]}"
    assert "crashes 0 unexpected 0" in res.stdout, res.stdout
    total = int(re.search(r"cases (\d+)", res.stdout).group(1))
    assert total > 2000, res.stdout
    for section in ("ops-arrays", "ops", "layers", "models", "data", "datasets", "load", "cli"):
        assert f" {section}=" in res.stdout or f": {section}=" in res.stdout, section


@pytest.mark.parametrize("argv", [["bogus"], ["demo", "--threads", "0"], ["demo", "--epochs", "x"],
                                  ["demo", "--quick", "--part", "stocks", "--stock-data", "/nonexistent/x.csv"],
                                  ["info", "--bogus"]])
def test_cli_bad_arguments_exit_nonzero_with_a_message(argv):
    res = subprocess.run([sys.executable, "-m", "fastnn", *argv], capture_output=True, text=True, timeout=120)
    assert res.returncode != 0
    assert (res.stderr + res.stdout).strip(), "no message"
    assert "Traceback" not in res.stderr, res.stderr
