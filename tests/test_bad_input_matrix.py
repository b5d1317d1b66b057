import os
import subprocess
import sys


def test_bad_input_matrix_in_a_child_process():
    """Every ops function x every array argument x malformed variants (dtypes, ranks,
    zero sizes, NaN/Inf, layouts, read-only, 2**31-row views): no crash, only documented
    exceptions or results."""
    here = os.path.dirname(__file__)
    res = subprocess.run([sys.executable, os.path.join(here, "bad_input_matrix.py")], capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, f"exit {res.returncode}\n{res.stdout}\n{res.stderr[-3000:]}"
    assert "crashes 0 unexpected 0" in res.stdout, res.stdout
