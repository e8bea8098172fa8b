"""python -m simple_conv_net.parity: the report's rows, exit code and JSON."""

import json

import pytest
import torch

from simple_conv_net import compare, parity


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_report_passes_and_writes_json(impl, dtype, tmp_path, capsys):
    path = tmp_path / "report.json"
    assert parity.main(["--impl", impl, "--dtype", dtype, "--batch-size", "8", "--json", str(path)]) == 0
    printed = capsys.readouterr().out
    assert "FAIL" not in printed and "22 passed, 0 failed" in printed
    report = json.loads(path.read_text())
    assert report["passed"] and report["impl"] == impl and len(report["rows"]) == 22
    if dtype == "float64":
        assert max(row["max_rel"] for row in report["rows"]) <= 1e-10


def test_chained_mode_on_random_data(impl, capsys):
    assert parity.main(["--impl", impl, "--chained", "--data", "random", "--batch-size", "8"]) == 0
    assert "chained" in capsys.readouterr().out


def test_a_wrong_gradient_fails_the_report(monkeypatch):
    """The report is not vacuous: a conv backward with a flipped sign in grad_input fails that row."""
    import vector_ops
    from simple_conv_net.functions import Kernels, conv2d_op
    from vector_ops.conv2d import conv2d_backward, conv2d_forward

    def flipped(*args):
        grad_x, grad_w, grad_b = conv2d_backward(*args)
        return -grad_x, grad_w, grad_b

    monkeypatch.setattr(vector_ops, "conv2d", conv2d_op(Kernels(conv2d_forward, flipped)))
    rows = parity.parity_rows("vector", *parity.make_batch("random", 4, torch.float64, seed=0))
    assert {row.name for row in rows if not row.passed} == {"input"}


def test_tolerances_are_what_the_docs_say():
    assert compare.TOLERANCE == {torch.float32: 1e-5, torch.float64: 1e-10} and compare.NATIVE_SLACK == 4


def test_finite_diff_mode(impl, capsys):
    assert parity.main(["--impl", impl, "--finite-diff", "--layer", "fc2", "--data", "random"]) == 0
    assert "central differences" in capsys.readouterr().out
