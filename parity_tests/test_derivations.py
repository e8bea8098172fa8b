"""docs/derivations.md (Homework I) is executable: every numbered equation is evaluated literally and
compared with native PyTorch's autograd, and its LaTeX is held to the comment the test evaluates.

How the page and this test are linked is described at the top of the page; the reading and evaluating
is in ``doc_math``. Small sizes, every size different, float64: well under a second of loops.
"""

import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import doc_math
from doc_math import SpecError

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "derivations.md"
TEXT = PAGE.read_text()
CHECKED, WRONG, BARE = doc_math.displays(TEXT)

# Every size different from every other, so that an index given another index's range cannot pass.
SIZES = dict(N=2, C_in=4, S_in=12, K=3, C_out=6, S_c=10, S_p=5, D=150, H=7, Q=8)
SIMPLE_CONV_NET = dict(N=64, C_in=1, S_in=28, K=5, C_out=20, S_c=24, S_p=12, D=2880, H=500, Q=10)
SECTIONS = {"F": "1. The forward pass in scalar form", "V": "2. The forward pass in vector form",
            "B": "3. The backward pass by the delta rule"}


def reference(sizes):
    """Every tensor the page names, from native PyTorch in float64 (numpy arrays; rho's entries 1-based)."""
    s = sizes
    generator = torch.Generator().manual_seed(0)

    def leaf(*shape, scale=1.0):
        return (torch.randn(*shape, generator=generator, dtype=torch.float64) * scale).requires_grad_()

    x = leaf(s["N"], s["C_in"], s["S_in"], s["S_in"])
    w_conv, b_conv = leaf(s["C_out"], s["C_in"], s["K"], s["K"], scale=0.3), leaf(s["C_out"], scale=0.1)
    w_fc1, b_fc1 = leaf(s["H"], s["D"], scale=0.1), leaf(s["H"], scale=0.1)
    w_fc2, b_fc2 = leaf(s["Q"], s["H"], scale=0.3), leaf(s["Q"], scale=0.1)
    target = torch.randint(s["Q"], (s["N"],), generator=generator)

    z_conv = F.conv2d(x, w_conv, b_conv)
    z_pool = F.max_pool2d(z_conv, 2)
    z_reshaped = z_pool.flatten(1)
    z_fc1 = F.linear(z_reshaped, w_fc1, b_fc1)
    z_relu = F.relu(z_fc1)
    z_fc2 = F.linear(z_relu, w_fc2, b_fc2)
    log_y = F.log_softmax(z_fc2, dim=1)
    loss = F.nll_loss(log_y, target)
    layers = dict(conv=z_conv, pool=z_pool, reshaped=z_reshaped, fc1=z_fc1, relu=z_relu, fc2=z_fc2)
    for tensor in layers.values():
        tensor.retain_grad()
    loss.backward()

    n, c_in, c_out, k, s_c, s_p = s["N"], s["C_in"], s["C_out"], s["K"], s["S_c"], s["S_p"]
    # The reshape's index map as native flatten places each entry (1-based): flatten distinct labels.
    labels = torch.randperm(s["D"], generator=generator)
    position = torch.empty_like(labels)
    position[labels.reshape(1, c_out, s_p, s_p).flatten(1)[0]] = torch.arange(s["D"])
    rho = position[labels].reshape(c_out, s_p, s_p) + 1
    # The im2col matrices from native unfold; the columns' gradient from autograd through it.
    columns = F.unfold(x.detach(), k).requires_grad_()
    z_again = (w_conv.detach().reshape(c_out, -1) @ columns + b_conv.detach()[:, None])
    z_again.backward(z_conv.grad.reshape(n, c_out, -1))

    values = dict(
        x=x, t=F.one_hot(target, s["Q"]), y=log_y.exp(), L=loss, rho=rho,
        w_conv=w_conv, b_conv=b_conv, w_fc1=w_fc1, b_fc1=b_fc1, w_fc2=w_fc2, b_fc2=b_fc2,
        X=F.unfold(x.reshape(n * c_in, 1, s["S_in"], s["S_in"]), k).reshape(n, c_in, k * k, s_c * s_c),
        W=w_conv.transpose(0, 1).reshape(c_in, c_out, k * k),
        Xhat=columns, What=w_conv.reshape(c_out, -1), Z=z_conv.reshape(n, c_out, s_c * s_c),
        U=F.unfold(z_conv.reshape(n * c_out, 1, s_c, s_c), 2, stride=2).reshape(n, c_out, 4, s_p * s_p),
        dL_dx=x.grad, dL_dw_conv=w_conv.grad, dL_db_conv=b_conv.grad, dL_dw_fc1=w_fc1.grad,
        dL_db_fc1=b_fc1.grad, dL_dw_fc2=w_fc2.grad, dL_db_fc2=b_fc2.grad,
        Delta=z_conv.grad.reshape(n, c_out, s_c * s_c), dL_dWhat=w_conv.grad.reshape(c_out, -1), G=columns.grad,
        **{f"z_{name}": tensor for name, tensor in layers.items()},
        **{f"delta_{name}": tensor.grad for name, tensor in layers.items()},
    )
    return {name: value.detach().numpy() for name, value in values.items()}


@pytest.fixture(scope="module")
def values():
    return reference(SIZES)


def test_every_display_has_a_check_and_the_numbers_run_in_order():
    assert not BARE, f"display equations with no check or wrong comment at lines {BARE}"
    comments = len(re.findall(r"<!--\s*(?:check|wrong)\b", TEXT))
    assert comments == len(CHECKED) + len(WRONG), "a check or wrong comment that follows no display equation"
    assert "```math" not in TEXT, "display equations are written $$ ... $$, each with its comment"
    tags = [equation.tag for equation in CHECKED]
    assert len(tags) == len(set(tags)), f"an equation number used twice: {tags}"
    for letter, section in SECTIONS.items():
        numbers = [int(tag[1:]) for tag in tags if tag[0] == letter]
        assert numbers == list(range(1, len(numbers) + 1)), f"{letter} equations out of order: {numbers}"
        start = TEXT.index(f"## {section}")
        end = TEXT.index("\n## ", start + 1)
        inside = [e.tag for e in CHECKED if start < TEXT.index(e.latex) < end]
        assert inside == [t for t in tags if t[0] == letter], f"{letter} equations outside '{section}'"
    assert {letter for letter, *_ in tags} <= set(SECTIONS)
    # every \tag is a checked equation, and every (F3)-style reference in the text names one
    assert sorted(doc_math.TAG.findall(TEXT)) == sorted(tags)
    cited = set(re.findall(r"\(([FVB]\d+)\)", TEXT))
    assert cited <= set(tags), f"the text cites equations that do not exist: {sorted(cited - set(tags))}"


@pytest.mark.parametrize("equation", CHECKED, ids=[e.tag for e in CHECKED])
def test_equation_matches_autograd(equation, values):
    """The comment, evaluated literally, gives native PyTorch's value of its left-hand side."""
    lhs_name = re.match(r"\s*(\w+)", equation.spec)[1]
    result = doc_math.evaluate(equation.spec, values, SIZES)
    truth = values[lhs_name]
    scale = max(1.0, float(np.abs(truth).max()))
    assert np.allclose(result, truth, rtol=1e-10, atol=1e-12 * scale), (
        f"({equation.tag}) {equation.spec}: max abs error {np.abs(result - truth).max():.3g}")


def assert_same_structure(equation, values):
    """The LaTeX and the comment name the same tensors with the same index expressions and sum over
    the same indices."""
    latex_refs, latex_sums, _ = doc_math.latex_refs(equation.latex, values)
    spec_refs, spec_sums = doc_math.spec_refs(equation.spec, values)
    assert latex_refs == spec_refs, (f"line {equation.line}: the LaTeX reads {sorted(latex_refs.elements())}, "
                                     f"the comment {sorted(spec_refs.elements())}")
    assert latex_sums == spec_sums, f"line {equation.line}: sums over {latex_sums} in the LaTeX, {spec_sums} in the comment"


@pytest.mark.parametrize("equation", CHECKED, ids=[e.tag for e in CHECKED])
def test_latex_says_what_is_checked(equation, values):
    assert_same_structure(equation, values)
    _, _, limits = doc_math.latex_refs(equation.latex, values)
    ranges = doc_math.spec_ranges(equation.spec, values, SIZES)
    for name, upper in limits:
        assert doc_math.size_of(upper, SIZES) == ranges[name], (
            f"({equation.tag}): the sum over {name} runs to {upper}, its index ranges over {ranges[name]}")
    spec_refs, _ = doc_math.spec_refs(equation.spec, values)
    lhs = re.match(r"\s*(\w+)", equation.spec)[1]
    if all(name == lhs for name, _ in spec_refs):          # index arithmetic alone on the right: (F4)
        spec_rhs = doc_math.normalise_spec_index(doc_math.split_spec(equation.spec)[2])
        assert doc_math.rhs_text(equation.latex) == spec_rhs, f"({equation.tag}): the LaTeX's right-hand side differs"


@pytest.mark.parametrize("equation", WRONG, ids=[f"line{e.line}" for e in WRONG])
def test_typical_error_fails(equation, values):
    """Each error of section 4 is shown as its comment says, and the comment does not hold."""
    assert_same_structure(equation, values)
    lhs_name = re.match(r"\s*(\w+)", equation.spec)[1]
    try:
        result = doc_math.evaluate(equation.spec, values, SIZES)
    except SpecError:
        return
    assert not np.allclose(result, values[lhs_name], rtol=1e-6), f"line {equation.line}: {equation.spec} holds"


@pytest.mark.parametrize("equation", CHECKED, ids=[e.tag for e in CHECKED])
def test_every_swapped_index_is_caught(equation, values):
    """Swapping two index expressions of any tensor in the equation breaks it: the checks above see the indices."""
    lhs_name = re.match(r"\s*(\w+)", equation.spec)[1]
    for mutant in doc_math.mutants(equation.spec, values):
        try:
            result = doc_math.evaluate(mutant, values, SIZES)
        except SpecError:
            continue
        assert not np.allclose(result, values[lhs_name], rtol=1e-6), f"({equation.tag}) the mutant {mutant} holds"


CODE = re.compile(r"`([\w/]+\.py): (\w+)`")


def test_each_equation_names_the_code_that_implements_it():
    """A 'Code:' line naming functions follows each equation before the next heading (equations
    that belong together, as (F3) and (F4), share one)."""
    for equation in CHECKED:
        rest = TEXT[TEXT.index(equation.latex):]
        heading = rest.find("\n#")
        section = rest[:heading if heading >= 0 else len(rest)]
        code = re.search(r"^Code: .*$", section, re.M)
        assert code and CODE.search(code[0]), f"({equation.tag}) names no function before the next heading"
    for path, name in CODE.findall(TEXT):
        source = (ROOT / path).read_text()
        assert re.search(rf"^(def {name}\(|{name} = )", source, re.M), f"{path} defines no {name}"


def shape_rows():
    section = TEXT[TEXT.index("## Sizes"):TEXT.index("## 1.")]
    for row in re.findall(r"^\|(.+)\|$", section, re.M):
        cells = [cell.strip() for cell in row.split("|")]
        if cells[1].startswith("$"):
            yield cells[1].strip("$`"), cells[2].strip("$`"), cells[3]


def test_sizes_table(values):
    """Each size in the table is the tensor's at the test's sizes, and the SimpleConvNet column is right."""
    rows = list(shape_rows())
    assert len(rows) >= 20
    for symbol, size, simple in rows:
        refs, _, _ = doc_math.latex_refs(symbol, values)
        ((name, leading),) = refs
        factors = [f for f in size.split("\\times")]
        assert tuple(doc_math.size_of(f, SIZES) for f in factors) == values[name].shape[len(leading):], symbol
        assert " × ".join(str(doc_math.size_of(f, SIMPLE_CONV_NET)) for f in factors) == simple, symbol


def test_simple_conv_net_sizes_follow_from_the_architecture():
    s = SIMPLE_CONV_NET
    for sizes in (s, SIZES):
        assert sizes["S_c"] == sizes["S_in"] - sizes["K"] + 1
        assert sizes["S_p"] * 2 == sizes["S_c"] and sizes["D"] == sizes["C_out"] * sizes["S_p"] ** 2
    assert len(set(SIZES.values())) == len(SIZES), "every test size must differ from the others"
