"""Proxy identities, the embedding cache and its invalidation, TaskEmbeddings files."""

from __future__ import annotations

import numpy as np
import pytest
from proxy_helpers import FakeProxy, write_folder

from fennec.errors import ArtifactError, SchemaError
from fennec.proxy import (
    EmbeddingCache,
    ProxyMismatchError,
    TaskEmbeddings,
    TaskInput,
    check_same_proxy,
    embed_input,
    identity_key,
)
from fennec.proxy.base import mean_embedding


def test_identity_key_ignores_versions_only(fake_proxy):
    ident = fake_proxy.identity
    assert identity_key({**ident, "versions": {"numpy": "0"}}) == identity_key(ident)
    assert identity_key({**ident, "weights": "v2"}) != identity_key(ident)
    assert identity_key({**ident, "preprocessing": {"bins": 9}}) != identity_key(ident)
    with pytest.raises(SchemaError, match="proxy identity lacks weights"):
        identity_key({"kind": "x", "arch": "y"})


def test_mismatch_error_names_both_proxies(fake_proxy):
    other = FakeProxy("2").identity
    with pytest.raises(ProxyMismatchError, match=r"embedded with proxy fake histogram \[v2\].*made with fake "
                       r"histogram \[v1\]"):
        check_same_proxy(fake_proxy.identity, other, where="query")
    check_same_proxy(fake_proxy.identity, dict(fake_proxy.identity), where="query")


def test_task_embedding_is_unit_mean_of_unit_rows(fake_proxy, folder):
    t = TaskInput.from_folder(folder)
    e = fake_proxy.embed_images(t.load())
    assert e.dtype == np.float32 and e.shape == (15, 24)
    assert np.allclose(np.linalg.norm(e, axis=1), 1, atol=1e-6)
    v = fake_proxy.embed_task(t.load())
    assert np.isclose(np.linalg.norm(v), 1, atol=1e-6)
    assert np.allclose(v, mean_embedding(e), atol=1e-6)
    # with labels every class weighs the same
    balanced = fake_proxy.embed_task(t.load(), t.labels)
    per_class = np.stack([e[t.labels == c].mean(0) for c in range(3)]).mean(0)
    assert np.allclose(balanced, per_class / np.linalg.norm(per_class), atol=1e-6)


def test_cache_hits_and_invalidates(tmp_path):
    root = write_folder(tmp_path / "t", {"a": 3, "b": 3})
    cache = EmbeddingCache(tmp_path / "cache")
    proxy = FakeProxy()
    first = embed_input(proxy, TaskInput.from_folder(root), cache=cache)
    calls = proxy.calls
    again = embed_input(proxy, TaskInput.from_folder(root), cache=cache)
    assert proxy.calls == calls and again.meta.get("cached") and np.array_equal(first.vector, again.vector)
    # another proxy identity: recomputed
    other = FakeProxy("2")
    embed_input(other, TaskInput.from_folder(root), cache=cache)
    assert other.calls > 0
    # changed content (one image rewritten): recomputed
    write_folder(root, {"a": 1}, seed=99)
    embed_input(proxy, TaskInput.from_folder(root), cache=cache)
    assert proxy.calls > calls
    # another probe sampling: recomputed
    calls = proxy.calls
    embed_input(proxy, TaskInput.from_folder(root), cache=cache, max_images=2)
    assert proxy.calls > calls
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 4


def test_cache_entry_of_another_identity_is_ignored(tmp_path, fake_proxy):
    cache = EmbeddingCache(tmp_path)
    emb = embed_input(fake_proxy, TaskInput(["a", "b"]), cache=cache)
    key = next(tmp_path.glob("*.npz")).stem
    assert cache.get(key, fake_proxy.identity) is not None
    assert cache.get(key, FakeProxy("9").identity) is None
    assert emb.meta["use"] == "names"


def test_task_embeddings_file_round_trip(tmp_path, fake_proxy):
    vecs = np.random.default_rng(0).normal(size=(3, 5))
    te = TaskEmbeddings(["a", "b", "c"], vecs, fake_proxy.identity, {"note": "x"})
    path = te.save(tmp_path / "e.safetensors")
    back = TaskEmbeddings.load(path)
    assert back.task_ids == ["a", "b", "c"] and back.identity == fake_proxy.identity
    assert np.allclose(back.vectors, vecs / np.linalg.norm(vecs, axis=1, keepdims=True), atol=1e-6)
    assert (tmp_path / "e.json").is_file()
    (tmp_path / "bad.safetensors").write_bytes(b"garbage")
    with pytest.raises(ArtifactError, match="bad.safetensors: cannot be read as task embeddings"):
        TaskEmbeddings.load(tmp_path / "bad.safetensors")
    with pytest.raises(SchemaError, match="task id\\(s\\) listed twice: a"):
        TaskEmbeddings(["a", "a"], vecs[:2])


def test_shipped_text_embeddings_cover_every_history_task(shipped_text):
    from fennec.data.shipped import list_histories, load_history

    assert shipped_text.identity["kind"] == "text" and shipped_text.dim == 384
    for name in list_histories():
        _, missing = shipped_text.lookup(load_history(name).task_ids)
        assert missing == [], name
