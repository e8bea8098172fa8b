"""The checker's functional form on the arguments newer signatures have (issue 23 item 4): dilation, groups and
'same' / 'valid' padding, ceil_mode and return_indices, class weights, ignore_index and K-dimensional losses,
log_softmax's dtype. Each fixture module of check_corpus/functional/ and each small custom op here is run through
the checker's plan, runner and analysis in this process (the project's own ops pass every one of these cases in
test_check.py's test_the_projects_own_ops_pass_everything, and at the command's defaults in the slow tests)."""

import pytest
import torch
from check_helpers import CORPUS, load, run_in_process

import vector_ops
from simple_conv_net.check import grade, plans
from simple_conv_net.check.forms import FUNCTIONAL
from simple_conv_net.check.forms.functional import extensions

# Native PyTorch's own note on its 'same' convolution with an even kernel, which the oracle runs (the command hides it).
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel lengths:UserWarning")
SMALL = grade.Options(plans.Settings(batch_sizes=(1, 3), speed_repeats=1, train_steps=0))
FIXTURES = CORPUS / "functional"


def judged(module, name: str):
    return run_in_process(module, name, "functional", SMALL)


def failing(result) -> list[str]:
    return [check.name for check in result.checks if not check.passed]


def test_the_table_asks_for_every_newer_argument():
    """Every newer argument has its cases, plain and with grad, passed by keyword (a tensor an older signature
    lacks too), and the older cases are still there, untouched by them."""
    wanted = {"conv2d": {"dilation", "groups", "padding='same'", "padding='valid'"},
              "max_pool2d": {"dilation", "ceil_mode", "return_indices"},
              "nll_loss": {"weight", "ignore_index", "a K-dimensional input"}, "log_softmax": {"dtype"}}
    for name, arguments in wanted.items():
        calls, _ = grade.plan(FUNCTIONAL[name], "functional", SMALL, None)
        used = {what for call in calls for what in extensions(call)}
        assert used == arguments, name
        newer = [call for call in calls if extensions(call)]
        assert any(call.grad for call in newer) and any(not call.grad for call in newer), name
        assert all(value == {"ref": "weight"} for call in newer for key, value in call.kwargs.items()
                   if key == "weight"), name
        older = [call for call in calls if call.case == "table" and not extensions(call)]
        assert older and all(set(call.kwargs) <= {"stride", "padding", "kernel_size", "dim", "reduction"}
                             for call in older), name
        watched = [call for call in calls if call.watch]
        assert watched and not any(extensions(call) for call in watched), name   # the from-scratch check's calls


@pytest.mark.parametrize("name", ["conv2d", "max_pool2d"])
def test_a_function_that_ignores_dilation(name, one_thread):
    result = judged(load(FIXTURES / "ignores_dilation.py"), name)
    assert result.status == "fail"
    assert result.diagnoses[0].startswith("dilation is ignored ("), result.diagnoses
    cases = [check for check in result.checks if check.name.startswith(("values", "gradient"))]
    assert all(check.passed for check in cases if "dilation" not in check.name), failing(result)


def test_a_conv_that_forgets_the_group_offset(one_thread):
    result = judged(load(FIXTURES / "ignores_groups.py"), "conv2d")
    assert result.status == "fail"
    assert result.diagnoses[0].startswith("groups is ignored, every filter reads the first group's"), result.diagnoses
    cases = [check for check in result.checks if check.name.startswith(("values", "gradient"))]
    assert all(check.passed for check in cases if "groups" not in check.name and "depthwise" not in check.name)


@pytest.mark.parametrize("name,refused", [
    ("conv2d", ["dilation", "groups", "padding='same'", "padding='valid'"]),
    ("max_pool2d", ["dilation", "ceil_mode", "return_indices"]),
    ("log_softmax", ["dtype"]),
    ("nll_loss", ["weight", "ignore_index", "a K-dimensional input"]),
])
def test_older_signatures_are_judged_on_what_they_take(name, refused, one_thread):
    """Correct on the older arguments: it passes, each newer argument it does not take reported in a note."""
    result = judged(load(FIXTURES / "old_signatures.py"), name)
    assert result.status == "pass", (failing(result), result.diagnoses)
    notes = [note.split(":")[0] for note in result.notes]
    assert sorted(notes) == sorted(f"does not accept {argument}" for argument in refused)
    assert all("calls reported, not judged: " in note for note in result.notes)
    assert any(check.name.startswith("from-scratch") and check.passed for check in result.checks)


class NotImplementedGroups:
    @staticmethod
    def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
        if groups != 1:
            raise NotImplementedError("groups: only 1 is supported")
        return vector_ops.conv2d(input, weight, bias, stride, padding, dilation)


class BrokenDilation:
    @staticmethod
    def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
        if dilation != 1:
            raise ValueError("cannot dilate")     # it takes the argument: an error is a failure
        return vector_ops.conv2d(input, weight, bias, stride, padding, dilation, groups)


def test_a_refusal_is_reported_an_error_of_a_taken_argument_fails(one_thread):
    refusing = judged(NotImplementedGroups, "conv2d")
    assert refusing.status == "pass", failing(refusing)
    assert sorted(note.split(":")[0] for note in refusing.notes) == ["refuses dilation with groups", "refuses groups"]
    broken = judged(BrokenDilation, "conv2d")
    assert broken.status == "fail" and any("ValueError: cannot dilate" in d for d in broken.diagnoses)
    assert not broken.notes


class ChannelIndices:
    """max_pool2d's indices counted over the whole sample, c*H*W + h*W + w."""

    @staticmethod
    def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
        found = vector_ops.max_pool2d(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)
        if not return_indices:
            return found
        output, indices = found
        channels, height, width = input.shape[-3:]
        return output, indices + torch.arange(channels).reshape(-1, 1, 1) * height * width


class NoIndices:
    @staticmethod
    def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
        return vector_ops.max_pool2d(input, kernel_size, stride, padding, dilation, ceil_mode)


def test_max_pool_indices_are_checked_against_pytorchs(one_thread):
    counted = judged(ChannelIndices, "max_pool2d")
    assert counted.status == "fail" and failing(counted) == ["indices return-indices N=2",
                                                             "indices return-indices-dilation2-ceil-mode N=2"]
    assert "they are positions in the whole sample, c*H*W + h*W + w" in counted.diagnoses[0], counted.diagnoses
    missing = judged(NoIndices, "max_pool2d")
    assert missing.status == "fail" and len(failing(missing)) == 2
    assert "not the pair (output, indices)" in missing.diagnoses[0]
