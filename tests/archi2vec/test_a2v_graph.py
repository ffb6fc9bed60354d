"""to_networkx: labels, attributes, multiplicity, topological numbering, no module names."""

from __future__ import annotations

from collections import OrderedDict

import networkx as nx
import torch
from torch import nn

from archi2vec import to_networkx, trace_model


class Double(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.fc(x)
        return y + y


class Pair(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x) + x


def _convnet(names: tuple[str, str, str]) -> nn.Sequential:
    return nn.Sequential(
        OrderedDict(
            [
                (names[0], nn.Conv2d(3, 32, 3, stride=2, padding=1)),
                (names[1], nn.Conv2d(32, 32, 3, padding=1, groups=32)),
                (names[2], nn.BatchNorm2d(32)),
            ]
        )
    )


def test_value_used_twice_keeps_multiplicity():
    g = to_networkx(trace_model(Double()))
    add = next(n for n, d in g.nodes(data=True) if d["label"] == "add")
    (src,) = list(g.predecessors(add))
    assert g.nodes[src]["label"] == "Linear"
    assert g.edges[src, add]["multiplicity"] == 2
    other = to_networkx(trace_model(Pair()))
    add2 = next(n for n, d in other.nodes(data=True) if d["label"] == "add")
    assert sorted(other.edges[p, add2]["multiplicity"] for p in other.predecessors(add2)) == [1, 1]


def test_nodes_numbered_in_topological_order():
    g = to_networkx(trace_model("test_resnet"))
    assert list(g.nodes) == list(range(g.number_of_nodes()))
    assert all(u < v for u, v in g.edges)
    assert nx.is_directed_acyclic_graph(g)
    assert g.nodes[0]["label"] == "input"
    assert g.nodes[g.number_of_nodes() - 1]["label"] == "output"


def test_conv_attributes_from_module():
    g = to_networkx(trace_model(_convnet(("a", "b", "c"))))
    convs = [d for _, d in g.nodes(data=True) if d["label"] == "Conv2d"]
    assert convs[0] == {
        "op": "call_module",
        "label": "Conv2d",
        "width": 32,
        "in_width": 3,
        "kernel_size": (3, 3),
        "stride": (2, 2),
        "groups": 1,
    }
    assert convs[1]["groups"] == 32
    bn = next(d for _, d in g.nodes(data=True) if d["label"] == "BatchNorm2d")
    assert bn["width"] == 32


def test_meta_device_keeps_widths():
    g = to_networkx(trace_model("resnet18"))
    widths = {d["width"] for _, d in g.nodes(data=True) if d["label"] == "Conv2d"}
    assert widths == {64, 128, 256, 512}
    fc = next(d for _, d in g.nodes(data=True) if d["label"] == "Linear")
    assert (fc["width"], fc["in_width"]) == (1000, 512)


def test_module_names_do_not_reach_the_graph():
    g1 = to_networkx(trace_model(_convnet(("stem", "dw", "norm"))))
    g2 = to_networkx(trace_model(_convnet(("x", "y", "z"))))
    assert nx.utils.graphs_equal(g1, g2)
    text = repr(list(g1.nodes(data=True))) + repr(list(g1.edges(data=True)))
    assert "stem" not in text and "norm" not in text.replace("BatchNorm", "")
