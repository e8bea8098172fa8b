"""The one definition of "matches" (simple_conv_net.compare): the measure, non-finite entries, the tolerance rule."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from simple_conv_net import parity
from simple_conv_net.compare import NATIVE_SLACK, TOLERANCE, compare, tolerance, unravel
from simple_conv_net.functions import Kernels, conv2d_op


def test_measure_is_relative_to_the_largest_truth_value():
    truth = torch.tensor([1e-9, 2.0, -4.0], dtype=torch.float64)
    result = compare(truth, torch.tensor([2e-9, 2.0, -4.0 + 4e-6]))
    assert result.max_abs == pytest.approx(4e-6, rel=0.02)     # float32's own rounding of -4 + 4e-6
    assert result.max_rel == pytest.approx(1e-6, rel=0.02)
    assert result.passed and result.tolerance == TOLERANCE[torch.float32]
    assert result.worst[0] == (2,)


def test_first_entry_beyond_the_tolerance_names_index_and_values():
    truth = torch.arange(12, dtype=torch.float64).reshape(3, 4)
    candidate = truth.clone().float()
    candidate[1, 2] += 0.5
    candidate[2, 3] += 1.0
    result = compare(truth, candidate)
    assert not result.passed
    assert result.first == ((1, 2), 6.5, 6.0)
    assert result.worst == ((2, 3), 12.0, 11.0)


def test_unravel_is_torchs():
    shape = (2, 1, 3, 4)
    assert [unravel(i, shape) for i in range(24)] == \
        [tuple(int(v) for v in torch.unravel_index(torch.tensor(i), shape)) for i in range(24)]
    assert unravel(0, ()) == ()


@pytest.mark.parametrize("special", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_entries_match_only_exactly(special):
    truth = torch.tensor([1.0, special, 3.0], dtype=torch.float64)
    assert compare(truth, truth.float()).passed
    for wrong in (0.0, -special if special == special else 1.0):
        candidate = truth.clone().float()
        candidate[1] = wrong
        result = compare(truth, candidate)
        assert not result.passed and "non-finite" in result.problem


def test_a_non_finite_candidate_where_the_truth_is_finite_fails():
    truth = torch.tensor([1.0, 2.0], dtype=torch.float64)
    for bad in (float("nan"), float("inf")):
        result = compare(truth, torch.tensor([1.0, bad]))
        assert not result.passed and result.first[0] == (1,)


def test_a_shape_mismatch_is_a_problem_not_a_crash():
    result = compare(torch.zeros(2, 3), torch.zeros(3, 2))
    assert not result.passed and "shape (3, 2), expected (2, 3)" in result.problem


def test_overflow_is_the_dtype_s_and_must_be_reproduced_not_excused():
    """x = w = 1e20 in a float32 linear layer: the products overflow. The truth as float32 can hold it is
    +-inf there, so a candidate of zeros fails (native's infinite error must not make the tolerance
    infinite), and one that overflows as native does passes."""
    x = torch.full((2, 3), 1e20)
    w = torch.full((4, 3), 1e20)
    truth = F.linear(x.double(), w.double())
    native = F.linear(x, w)
    assert torch.isinf(native).all() and torch.isfinite(truth).all()
    zeros = compare(truth, torch.zeros(2, 4), native)
    assert not zeros.passed and zeros.tolerance == TOLERANCE[torch.float32]
    assert compare(truth, native.clone(), native).passed
    sums = torch.tensor([3e38, 3e38, -3e38])                   # finite truth 3e38, a float32 sum that overflows
    in_order = (sums[0] + sums[1]) + sums[2]
    assert compare(sums.double().sum().reshape(1), in_order.reshape(1), in_order.reshape(1)).passed
    assert not compare(sums.double().sum().reshape(1), torch.tensor([0.0]), in_order.reshape(1)).passed


def test_cancelling_terms_are_judged_at_their_own_scale():
    """A conv output of -0.0043 from terms of size 1 (found by the thorough property run): vector's
    float32 sum is 1.6e-7 off, 3.8e-5 of the result but 3e-8 of the terms. Given the terms' magnitude
    it passes; a term dropped (an index bug) fails all the same."""
    x = torch.tensor([[[[0., 0, 2, 0, 2]], [[0., 0, 1, 2, 0]], [[0., 1, 2, 1, 0]]]])
    w = torch.randn(1, 3, 3, 4, generator=torch.Generator().manual_seed(1))
    b = torch.randn(1, generator=torch.Generator().manual_seed(2))
    truth = F.conv2d(x.double(), w.double(), b.double(), (3, 2), (2, 0))
    magnitude = F.conv2d(x.double().abs(), w.double().abs(), b.double().abs(), (3, 2), (2, 0))
    assert magnitude.item() > 1000 * abs(truth.item())
    rounded = truth.float() + 1.6e-7                               # a correct float32 sum, in another order
    assert not compare(truth, rounded).passed
    assert compare(truth, rounded, magnitude=magnitude).passed
    dropped = truth - x.double()[0, 1, 0, 3] * w.double()[0, 1, 2, 3]  # one term left out
    assert not compare(truth, dropped.float(), magnitude=magnitude).passed
    assert tolerance(torch.float32, condition=1000.0) == pytest.approx(1000 * TOLERANCE[torch.float32])
    assert tolerance(torch.float32, condition=0.5) == TOLERANCE[torch.float32]


def test_float32_tolerance_widens_with_native_error_only():
    assert tolerance(torch.float32) == 1e-5
    assert tolerance(torch.float32, native_rel=1e-7) == 1e-5
    assert tolerance(torch.float32, native_rel=1e-4) == pytest.approx(NATIVE_SLACK * 1e-4)
    assert tolerance(torch.float64, native_rel=1e-4) == 1e-10
    with pytest.raises(ValueError, match="float32 or float64"):
        tolerance(torch.float16)


def test_a_long_float32_sum_is_judged_against_float64_and_native_rounding():
    """A million float32 terms added in order round far beyond 1e-5 of the true sum (1.1e-4 here).
    Judged against the float64 truth, with native's own error known, a candidate as accurate as
    native passes (in either order); one that lost 1% of the terms does not."""
    terms = (torch.rand(1_000_000, generator=torch.Generator().manual_seed(0)) * 0.2).numpy()
    truth = torch.tensor([terms.astype(np.float64).sum()])
    native = torch.from_numpy(np.add.accumulate(terms)[-1:].copy())            # float32, one term at a time
    reversed_order = torch.from_numpy(np.add.accumulate(terms[::-1])[-1:].copy())
    assert compare(truth, native).max_rel > TOLERANCE[torch.float32], "the old rule's false alarm, else vacuous"
    assert compare(truth, reversed_order, native).passed
    assert compare(truth, torch.from_numpy(terms).sum().reshape(1), native).passed
    assert not compare(truth, native - float(terms[:10_000].sum()), native).passed


@pytest.mark.slow
@pytest.mark.parametrize("impl", ["vector", "scalar"])
def test_parity_at_batch_2000_passes_correct_code_and_fails_a_sign_flip(impl, monkeypatch):
    """Before the float64 truth, batch 2000 (one thread) failed vector's conv weight gradient at 1.3e-5
    against native float32, whose own error there is 1.3e-5. Now it passes, and a flipped sign in one
    backward still fails."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    x, target = parity.make_batch("mnist", 2000, torch.float32, seed=0)
    rows = parity.parity_rows(impl, x, target)
    assert all(row.passed for row in rows), parity.format_table(rows)
    assert max(row.native_rel for row in rows) > 1e-5, "native's own error must exceed 1e-5 here, or the test is vacuous"

    import vector_ops
    from vector_ops.conv2d import conv2d_backward, conv2d_forward

    def flipped(*args):
        grad_x, grad_w, grad_b = conv2d_backward(*args)
        return grad_x, -grad_w, grad_b

    monkeypatch.setattr(vector_ops, "conv2d", conv2d_op(Kernels(conv2d_forward, flipped)))
    rows = parity.parity_rows("vector", x, target)
    torch.set_num_threads(threads)
    assert {row.name for row in rows if not row.passed} == {"conv_layer.weight"}
