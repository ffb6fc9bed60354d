"""trace_model: timm names on the meta device, fx == eager, module-tree fallback, name errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from archi2vec import Archi2VecError, UnknownArchitectureError, to_networkx, trace_model
from archi2vec.trace import resolve_arch


class Branchy(nn.Module):
    """Data-dependent control flow: torch.fx cannot trace it."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 8, 3, padding=1)
        self.b = nn.Sequential(nn.Conv2d(3, 8, 1), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.sum() > 0:
            return self.a(x)
        return self.b(x)


def test_timm_name_traces_on_meta_device():
    result = trace_model("test_resnet")
    assert result.kind == "fx"
    assert result.arch == "test_resnet"
    assert result.device == "meta"
    assert not result.module.training
    assert result.graph is not None and len(result.graph.nodes) > 10


@pytest.mark.parametrize("arch", ["test_resnet", "test_vit"])
def test_fx_output_equals_eager_output(arch, torch_one_thread):
    import timm

    torch.manual_seed(0)
    model = timm.create_model(arch, pretrained=False).eval()  # real CPU weights, not meta
    result = trace_model(model)
    assert result.kind == "fx" and result.arch is None and result.device == "cpu"
    traced = torch.fx.GraphModule(model, result.graph)
    size = model.pretrained_cfg["input_size"]
    x = torch.randn(2, *size)
    with torch.no_grad():
        torch.testing.assert_close(traced(x), model(x), rtol=1e-5, atol=1e-5)


def test_untraceable_module_falls_back_to_module_tree():
    result = trace_model(Branchy())
    assert result.kind == "module_tree"
    assert result.graph is None
    assert "TraceError" in result.error or "symbolically traced" in result.error
    g = to_networkx(result)
    assert g.graph["kind"] == "module_tree"
    labels = [g.nodes[i]["label"] for i in range(g.number_of_nodes())]
    assert labels == ["input", "Branchy", "Conv2d", "Sequential", "Conv2d", "ReLU", "output"]
    assert list(g.nodes) == list(range(7))


def test_untraceable_module_raises_without_fallback():
    with pytest.raises(Archi2VecError, match="fx tracing of Branchy failed"):
        trace_model(Branchy(), fallback=False)


def test_input_size_records_shapes():
    result = trace_model("test_resnet", input_size=(3, 64, 64))
    g = to_networkx(result)
    shapes = [
        d["shape"] for _, d in g.nodes(data=True) if d["op"] == "call_module" and "shape" in d
    ]
    assert shapes and shapes[0][0] == 1


def test_arch_tag_is_stripped():
    assert resolve_arch("resnet50.a1_in1k") == "resnet50"


def test_unknown_arch_names_close_matches():
    with pytest.raises(
        UnknownArchitectureError,
        match=r"Unknown timm architecture 'resnt50'; close matches: resnet50",
    ):
        trace_model("resnt50")


def test_bad_input_type():
    with pytest.raises(
        Archi2VecError, match="expects a timm architecture name or a torch.nn.Module"
    ):
        trace_model(3.5)
