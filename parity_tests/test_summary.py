"""simple_conv_net.summary against the handouts' own figures and counts done by hand."""

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from simple_conv_net.model import LeNet, LeNet5, SimpleConvNet, build_model, conv
from simple_conv_net.summary import FLOAT32_BYTES, ZERO_MAC_OPS, CountingOps, count, main, totals

# Seed 001, question 1: input 64x64x128; conv 3x3 128->256 stride 2 padding 1, then conv 3x3 256->512 padding 1.
Q1_PARAMS = 3 * 3 * 128 * 256 + 3 * 3 * 256 * 512                           # (a), "skip bias terms"
Q1_MACS = 3 * 3 * 128 * 256 * 32 * 32 + 3 * 3 * 256 * 512 * 32 * 32         # (b)


def q1_block(bias: bool):
    w1, w2 = torch.empty(256, 128, 3, 3, device="meta"), torch.empty(512, 256, 3, 3, device="meta")
    b1, b2 = (torch.empty(256, device="meta"), torch.empty(512, device="meta")) if bias else (None, None)

    def block(ops, x):
        x = ops.conv2d(x, w1, b1, stride=2, padding=1)
        return ops.conv2d(x, w2, b2, stride=1, padding=1)

    return block


def test_seed_001_q1_block_without_bias():
    rows = count(q1_block(bias=False), (128, 64, 64))
    assert [r.name for r in rows] == ["conv2d_1", "conv2d_2"]
    assert [r.output_shape for r in rows] == [(256, 32, 32), (512, 32, 32)]   # (63-3+2)/2+1 = 32, then 32
    assert totals(rows).params == Q1_PARAMS == 1_474_560
    assert totals(rows).macs_per_image == Q1_MACS == 1_509_949_440
    assert [r.macs_per_image for r in rows] == [3 * 3 * 128 * 256 * 32 * 32, 3 * 3 * 256 * 512 * 32 * 32]
    # (c): 64x64x128 -> 32x32x256 halves the memory, -> 32x32x512 doubles it back: no change overall.
    input_bytes = 64 * 64 * 128 * FLOAT32_BYTES
    assert rows[0].activation_bytes * 2 == input_bytes and rows[1].activation_bytes == input_bytes


def test_seed_001_q1_block_with_bias_reported_separately():
    rows = count(q1_block(bias=True), (128, 64, 64), batch_size=8)
    t = totals(rows)
    assert t.weight_params == Q1_PARAMS and t.bias_params == 256 + 512 and t.params == Q1_PARAMS + 768
    assert t.macs_per_image == Q1_MACS and t.macs == 8 * Q1_MACS    # bias additions are not multiply-adds


def test_a_layer_table_of_real_modules_counts_the_same():
    first = nn.Conv2d(128, 256, 3, stride=2, padding=1, bias=False)
    second = nn.Conv2d(256, 512, 3, stride=1, padding=1, bias=False)
    rows = count([("stage1", "first", conv(first)), ("stage2", "second", conv(second))], (128, 64, 64))
    assert [r.name for r in rows] == ["stage1", "stage2"]
    assert totals(rows).params == Q1_PARAMS and totals(rows).macs_per_image == Q1_MACS


def test_simple_conv_net_by_hand():
    rows = {r.name: r for r in count(SimpleConvNet("torch"), (1, 28, 28), batch_size=64)}
    assert list(rows) == ["conv", "pool", "reshape", "fc1", "relu", "fc2", "output"]
    assert rows["conv"].params == 20 * 1 * 5 * 5 + 20 and rows["conv"].bias_params == 20
    assert rows["conv"].macs_per_image == 24 * 24 * 20 * 25
    assert rows["conv"].output_shape == (20, 24, 24) and rows["pool"].output_shape == (20, 12, 12)
    assert rows["fc1"].params == 2880 * 500 + 500 and rows["fc1"].macs_per_image == 2880 * 500
    assert rows["fc2"].params == 500 * 10 + 10 and rows["fc2"].macs_per_image == 500 * 10
    for name in ("pool", "reshape", "relu", "output"):
        assert rows[name].params == 0 and rows[name].macs_per_image == 0, name
    t = totals(list(rows.values()))
    assert t.params == 1_446_030
    assert t.macs_per_image == 24 * 24 * 20 * 25 + 2880 * 500 + 500 * 10 and t.macs == 64 * t.macs_per_image
    assert rows["conv"].activation_bytes == 64 * 20 * 24 * 24 * 4 and rows["fc2"].activation_bytes == 64 * 10 * 4


def test_lenet_by_hand():
    rows = {r.name: r for r in count(LeNet("torch"), (1, 28, 28))}
    assert rows["conv1"].params == 20 * 25 + 20 and rows["conv1"].macs_per_image == 20 * 24 * 24 * 1 * 25
    assert rows["conv2"].params == 50 * 20 * 25 + 50 and rows["conv2"].macs_per_image == 50 * 8 * 8 * 20 * 25
    assert rows["pool2"].output_shape == (50, 4, 4)
    assert rows["ip1"].params == 800 * 500 + 500 and rows["ip1"].macs_per_image == 800 * 500
    assert rows["ip2"].params == 500 * 10 + 10
    assert totals(list(rows.values())).params == 431_080


def test_lenet5_on_cifar10_has_the_classic_62006_parameters():
    rows = count(LeNet5("torch", (3, 32, 32)))   # input_shape defaults to the model's
    assert totals(rows).params == 62_006
    assert {r.name: r.output_shape for r in rows}["pool2"] == (16, 5, 5)


@pytest.mark.parametrize("name", ["simple", "lenet", "lenet5"])
def test_counts_agree_with_the_model_itself(name):
    """Parameters with model.parameters(), shapes with a real forward, multiply-adds with torch's flop counter."""
    model = build_model(name, "torch")
    rows = count(model, batch_size=3)
    assert totals(rows).params == sum(p.numel() for p in model.parameters())
    x = torch.zeros(3, *model.input_shape)
    with FlopCounterMode(display=False) as flops, torch.no_grad():
        _, intermediates = model(x, return_intermediates=True)
    assert [r.name for r in rows] == list(intermediates)
    for row in rows:
        assert (3, *row.output_shape) == tuple(intermediates[row.name].shape), row.name
    assert flops.get_total_flops() == 2 * totals(rows).macs   # one multiply-add = two flops
    assert all(r.macs_per_image == 0 for r in rows if r.op in ZERO_MAC_OPS)


def test_counting_ops_compute_nothing_and_record_every_call():
    counter = CountingOps()
    weight = torch.randn(4, 3)
    y = counter.ops.relu(counter.ops.linear(torch.empty(2, 3, device="meta"), weight))
    y = counter.ops.linear(y, weight.T)   # a new tensor object: counted
    counter.ops.linear(y, weight)         # the same parameter again: counted once
    assert y.device.type == "meta"
    assert [c.op for c in counter.calls] == ["linear", "relu", "linear", "linear"]
    assert [c.weight_params for c in counter.calls] == [12, 0, 12, 0]
    assert [c.macs for c in counter.calls] == [2 * 3 * 4, 0, 2 * 4 * 3, 2 * 3 * 4]


def test_bad_arguments():
    with pytest.raises(ValueError, match="batch_size"):
        count(SimpleConvNet("torch"), batch_size=0)
    with pytest.raises(ValueError, match="input_shape"):
        count(q1_block(False), None)


def test_cli_prints_the_table(capsys):
    assert main(["--model", "lenet", "--batch-size", "64"]) == 0
    out = capsys.readouterr().out
    for text in ("conv2", "50x8x8", "431,080", "2,293,000", "146,752,000", "0 multiply-adds"):
        assert text in out, text
    assert main([]) == 0 and "1,446,030" in capsys.readouterr().out


def test_cli_names_the_bad_argument(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--model", "lenet", "--input-shape", "1", "8", "8"])
    assert exit_.value.code == 2 and "--input-shape" in capsys.readouterr().err
