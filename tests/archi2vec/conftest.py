"""Shared fixtures for the archi2vec tests: timm imported once, small architectures encoded once."""

from __future__ import annotations

import pytest

from fennec._torch_compat import ensure_torchvision

ensure_torchvision()

# Small architectures used by the nearest-neighbour facts (all CPU-cheap on the meta device).
CANDIDATES = (
    "resnet18",
    "resnet50",
    "resnext50_32x4d",
    "vit_small_patch16_224",
    "deit_small_patch16_224",
    "vit_base_patch16_224",
    "test_resnet",
    "test_vit",
    "test_convnext",
)


@pytest.fixture(scope="session")
def torch_one_thread():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def candidate_vectors(torch_one_thread):
    """``{arch: vector}`` for :data:`CANDIDATES`, with the default encoder."""
    from archi2vec import embed_timm

    return {name: embed_timm(name) for name in CANDIDATES}
