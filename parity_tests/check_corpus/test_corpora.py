"""The fixture corpora of the checker's forms stay whole: every manifest's snippets exist and every snippet
is used; every fixture composes, and parses unless its manifest says the file is unusable; each corpus's
correct implementation matches native PyTorch on one case per layer. (Every fixture's findings were
verified once against PyTorch, in full: docs/handouts.md.)"""

import importlib
import importlib.util
import json
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from corpora import CORPORA, appended, compose, manifest  # noqa: E402

sys.path.remove(str(HERE))


def snippet_files(entry):
    return [s if isinstance(s, str) else s["file"] for s in entry.get("snippets", [])]


@pytest.mark.parametrize("corpus", CORPORA)
def test_manifest_names_every_snippet_and_only_existing_ones(corpus):
    fixtures = manifest(corpus)["fixtures"]
    used = {name for entry in fixtures.values() for name in snippet_files(entry)}
    on_disk = {str(p.relative_to(HERE / corpus)) for p in (HERE / corpus).rglob("*.py")
               if "good" not in p.parts and p.parent.name != "cs231n"}
    assert used <= on_disk, f"missing snippets: {sorted(used - on_disk)}"
    assert on_disk <= used, f"snippets no fixture uses: {sorted(on_disk - used)}"


@pytest.mark.parametrize("corpus", CORPORA)
def test_every_fixture_parses_unless_unusable(corpus):
    """Every file a snippet goes into compiles, unless the manifest calls the fixture unusable."""
    for name, entry in manifest(corpus)["fixtures"].items():
        try:
            for into, text in appended(corpus, name).items():
                compile(text, into, "exec")
            parsed = True
        except SyntaxError:
            parsed = False
        assert parsed == (entry.get("file", {}).get("finding") != "unusable"), name


def test_compose_writes_the_submission(tmp_path):
    target = compose("lenet_dict", "sfu_port_pooling_forward_chw_layout", tmp_path)
    assert sorted(p.name for p in target.glob("*.py")) == [
        "conv_layer.py", "inner_product.py", "pooling_layer.py", "relu.py", "utils.py"]
    assert (target / "pooling_layer.py").read_text().endswith(
        (HERE / "lenet_dict" / "sfu_port" / "broken" / "pooling_forward_chw_layout.py").read_text())


@contextmanager
def imported(folder, *names):
    """Import modules from folder (a submission's own top-level names: utils, cs231n...); forget them, and
    the path, afterwards."""
    sys.path.insert(0, str(folder))
    try:
        yield [importlib.import_module(name) for name in names]
    finally:
        sys.path.remove(str(folder))
        for name, module in list(sys.modules.items()):
            if Path(getattr(module, "__file__", None) or "/").is_relative_to(folder):
                del sys.modules[name]


def close(candidate, truth):
    return np.allclose(np.asarray(candidate), truth.detach().numpy(), rtol=1e-9, atol=1e-12)


def test_cs231n_good_matches_torch():
    """Forwards only, the costly ones (every backward was verified against autograd once, in full)."""
    r = np.random.default_rng(0)
    with imported(HERE / "cs231n" / "good", "cs231n.layers") as (layers,):
        x, w, b = r.standard_normal((2, 3, 5, 4)), r.standard_normal((4, 3, 3, 2)), r.standard_normal(4)
        out, _ = layers.conv_forward_naive(x, w, b, {"stride": 2, "pad": 1})
        assert close(out, F.conv2d(*map(torch.tensor, (x, w, b)), stride=2, padding=1))

        x = r.standard_normal((2, 6, 3, 4))
        gamma, beta = r.standard_normal((1, 6, 1, 1)), r.standard_normal((1, 6, 1, 1))
        out, _ = layers.spatial_groupnorm_forward(x, gamma, beta, 3, {})
        assert close(out, F.group_norm(torch.tensor(x), 3, torch.tensor(gamma.ravel()), torch.tensor(beta.ravel())))

        bn_param = {"mode": "train", "momentum": 0.8, "running_mean": np.zeros(6), "running_var": np.ones(6)}
        out, _ = layers.spatial_batchnorm_forward(x, gamma.ravel(), beta.ravel(), bn_param)
        assert close(out, F.batch_norm(torch.tensor(x), None, None, torch.tensor(gamma.ravel()),
                                       torch.tensor(beta.ravel()), training=True))
        rows = x.transpose(0, 2, 3, 1).reshape(-1, 6)       # the handout's convention, the biased variance
        assert np.allclose(bn_param["running_var"], 0.8 + 0.2 * rows.var(axis=0))


def test_lenet_dict_goods_match_torch_in_their_layouts():
    r = np.random.default_rng(1)
    x = r.standard_normal((2, 3, 6, 4))                   # non-square, so the layouts differ
    ref = F.max_pool2d(torch.tensor(x), 2, 2).numpy()
    for folder, module, order in [(HERE / "lenet_dict" / "cmu10601" / "good", "cnn_lenet", "C"),
                                  (HERE / "lenet_dict" / "sfu_port" / "good", "pooling_layer", "F")]:
        column = x.transpose(2, 3, 1, 0).reshape(-1, 2, order=order)      # (h, w, c) in that order
        with imported(folder, module) as (layer,):
            out = layer.pooling_layer_forward({"height": 6, "width": 4, "channel": 3, "batch_size": 2, "data": column},
                                              {"k": 2, "stride": 2, "pad": 0})
        assert np.allclose(out["data"], ref.transpose(2, 3, 1, 0).reshape(-1, 2, order=order))


def test_lenet_model_good_is_the_declared_lenet():
    spec = importlib.util.spec_from_file_location("corpus_lenet_solution", HERE / "lenet_model" / "good" / "solution.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = module.LeNet(n_classes=10)
    declared = json.loads((HERE / "lenet_model" / "MANIFEST.json").read_text())["parameters"]
    assert sum(p.numel() for p in model.parameters()) == declared == 62006
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
