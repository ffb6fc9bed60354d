"""Archi2Vec: invariances, determinism across processes, parameters, nearest-neighbour facts."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections import OrderedDict
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
import torch
from torch import nn

from archi2vec import Archi2Vec, Archi2VecError, embed_model, to_networkx, trace_model
from archi2vec.embed import node_label

REPO = Path(__file__).resolve().parents[2]


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b)


def _shuffled_copy(g: nx.DiGraph, seed: int) -> nx.DiGraph:
    """An isomorphic copy: new node ids and a different insertion order of nodes and edges."""
    rng = random.Random(seed)
    nodes = list(g.nodes)
    perm = nodes[:]
    rng.shuffle(perm)
    mapping = dict(zip(nodes, [f"n{p * 7 + 3}" for p in perm], strict=True))
    h = nx.DiGraph()
    items = list(g.nodes(data=True))
    rng.shuffle(items)
    h.add_nodes_from((mapping[n], dict(d)) for n, d in items)
    edges = list(g.edges(data=True))
    rng.shuffle(edges)
    h.add_edges_from((mapping[u], mapping[v], dict(d)) for u, v, d in edges)
    return h


def test_vectors_are_unit_float32():
    vec = Archi2Vec().fit_transform([to_networkx(trace_model("test_resnet"))])
    assert vec.shape == (1, 256) and vec.dtype == np.float32
    assert np.linalg.norm(vec[0]) == pytest.approx(1.0, abs=1e-6)


def test_isomorphic_relabelling_gives_same_vector():
    g = to_networkx(trace_model("test_convnext"))
    enc = Archi2Vec(n_features=64)
    base = enc.transform_one(g)
    for seed in (0, 1):
        np.testing.assert_array_equal(enc.transform_one(_shuffled_copy(g, seed)), base)


def test_renaming_submodules_gives_same_vector(torch_one_thread):
    import timm

    with torch.device("meta"):
        model = timm.create_model("test_resnet", pretrained=False)
    a = embed_model(nn.Sequential(OrderedDict(backbone=model)))
    b = embed_model(nn.Sequential(OrderedDict(zz_other_name=model)))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, embed_model("test_resnet"))


def test_identical_across_processes_with_different_hash_seed(candidate_vectors):
    code = (
        "import json, sys\n"
        "from archi2vec import embed_timm\n"
        "print(json.dumps({n: embed_timm(n).tobytes().hex() for n in ('test_vit', 'resnet50')}))\n"
    )
    env = dict(os.environ, PYTHONHASHSEED="12345", OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=REPO, capture_output=True, text=True, check=True
    )
    other = json.loads(out.stdout.strip().splitlines()[-1])
    for name, hexed in other.items():
        assert bytes.fromhex(hexed) == candidate_vectors[name].tobytes(), name


def test_multiplicity_changes_the_label():
    assert node_label({"label": "add"}, multiplicities=[2]) == "add|dup2"
    assert node_label({"label": "add"}, multiplicities=[1, 1]) == "add"


def test_op_shape_label_has_width_bucket_kernel_stride_groups():
    attrs = {
        "label": "Conv2d",
        "width": 384,
        "in_width": 384,
        "kernel_size": (3, 3),
        "stride": (2, 2),
        "groups": 384,
    }
    assert node_label(attrs) == "Conv2d|w9|k3x3|s2x2|gdw"
    assert node_label(attrs, mode="op") == "Conv2d"


def test_vit_base_and_deit_small_differ_only_with_widths(candidate_vectors):
    base, small = (
        candidate_vectors["vit_base_patch16_224"],
        candidate_vectors["deit_small_patch16_224"],
    )
    assert not np.array_equal(base, small)
    assert _cos(base, small) < 0.9
    enc = Archi2Vec(node_label="op")
    g_base = to_networkx(trace_model("vit_base_patch16_224"))
    g_small = to_networkx(trace_model("deit_small_patch16_224"))
    # Without widths the two share one topology (the environment guide's warning), hence the default.
    np.testing.assert_array_equal(enc.transform_one(g_base), enc.transform_one(g_small))


def test_resnet50_neighbours_are_convnets_before_vits(candidate_vectors):
    q = candidate_vectors["resnet50"]
    others = {n: _cos(q, v) for n, v in candidate_vectors.items() if n != "resnet50"}
    ranked = sorted(others, key=others.get, reverse=True)
    resnets = ["resnext50_32x4d", "resnet18", "test_resnet"]
    vits = ["vit_small_patch16_224", "deit_small_patch16_224", "vit_base_patch16_224", "test_vit"]
    assert set(ranked[:3]) == set(resnets), ranked
    assert ranked[0] == "resnext50_32x4d"  # same stages and bottleneck blocks, grouped 3x3 convs
    assert min(others[n] for n in resnets) > max(others[n] for n in vits) + 0.1


def test_deit_small_and_vit_small_are_closer_to_each_other_than_to_resnet50(candidate_vectors):
    v = candidate_vectors
    pair = _cos(v["deit_small_patch16_224"], v["vit_small_patch16_224"])
    assert pair > _cos(v["deit_small_patch16_224"], v["resnet50"]) + 0.5
    assert pair > _cos(v["vit_small_patch16_224"], v["resnet50"]) + 0.5


def test_fit_is_stateless_and_returns_self():
    enc = Archi2Vec(n_features=32, iterations=2)
    assert enc.fit() is enc and enc.n_features_out_ == 32
    g = to_networkx(trace_model(nn.Sequential(nn.Linear(3, 5), nn.ReLU())))
    np.testing.assert_array_equal(
        Archi2Vec(n_features=32, iterations=2).transform([g]), enc.transform([g])
    )
    assert enc.get_params() == {"n_features": 32, "iterations": 2, "node_label": "op_shape"}


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {"n_features": 1},
            "The 'n_features' parameter of Archi2Vec must be an int >= 2. Got 1 instead.",
        ),
        (
            {"iterations": 0},
            "The 'iterations' parameter of Archi2Vec must be an int >= 1. Got 0 instead.",
        ),
        ({"node_label": "shape"}, "The 'node_label' parameter of Archi2Vec must be one of"),
    ],
)
def test_parameter_errors(params, message):
    with pytest.raises(Archi2VecError, match=message.replace("(", r"\(").replace("[", r"\[")):
        Archi2Vec(**params).fit()


def test_transform_rejects_a_bare_graph():
    with pytest.raises(Archi2VecError, match="wrap a single graph"):
        Archi2Vec().transform(nx.DiGraph())
