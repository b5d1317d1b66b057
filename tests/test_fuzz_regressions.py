"""Every input tools/fuzz_load.py ever flagged (none so far): each must give ValueError."""
import glob
import os

import pytest

FINDINGS = sorted(glob.glob(os.path.join(os.path.dirname(__file__), "fuzz_findings", "*")))


@pytest.mark.parametrize("path", FINDINGS or [None])
def test_finding_is_refused_cleanly(path, tmp_path):
    if path is None:
        pytest.skip("no fuzz findings recorded")
    import sys
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tools"))
    import fuzz_load
    h = fuzz_load.Harness(str(tmp_path))
    h.run(open(path, "rb").read())
