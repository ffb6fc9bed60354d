"""Task proxies: a task's images or class names -> one unit vector, with the proxy's identity.

Light at import time: torch, timm, open_clip and sentence-transformers are imported only when a proxy
first embeds something.

- :mod:`fennec.proxy.base`: the :class:`ProxyEmbedder` interface, :class:`TaskEmbedding`, identities;
- :mod:`fennec.proxy.text`: class names through the packaged all-MiniLM-L6-v2 (:class:`TextProxy`);
- :mod:`fennec.proxy.timm_proxy`: any timm image model (:class:`TimmProxy`; EfficientNet-Lite offline);
- :mod:`fennec.proxy.openclip`: CLIP image + text towers (:class:`OpenCLIPProxy`);
- :mod:`fennec.data.inputs`: folders, CSVs, arrays, benchmark ids; class-balanced probe sampling;
- :mod:`fennec.proxy.cache`: the on-disk embedding cache;
- :mod:`fennec.proxy.store`: sets of task embeddings on disk, the shipped text embeddings;
- :mod:`fennec.proxy.embed`: proxy specs, :func:`embed_input`, the ImageNet-label bridge.
"""

from __future__ import annotations

from fennec.data.inputs import TaskInput as TaskInput
from fennec.proxy.base import (
    DEFAULT_TEMPLATE as DEFAULT_TEMPLATE,
)
from fennec.proxy.base import (
    ProxyEmbedder as ProxyEmbedder,
)
from fennec.proxy.base import (
    ProxyMismatchError as ProxyMismatchError,
)
from fennec.proxy.base import (
    TaskEmbedding as TaskEmbedding,
)
from fennec.proxy.base import (
    check_same_proxy as check_same_proxy,
)
from fennec.proxy.base import (
    describe_identity as describe_identity,
)
from fennec.proxy.base import (
    identity_key as identity_key,
)
from fennec.proxy.cache import EmbeddingCache as EmbeddingCache
from fennec.proxy.embed import (
    bridge_embedding as bridge_embedding,
)
from fennec.proxy.embed import (
    embed_input as embed_input,
)
from fennec.proxy.embed import (
    make_proxy as make_proxy,
)
from fennec.proxy.embed import (
    proxy_for_identity as proxy_for_identity,
)
from fennec.proxy.store import TaskEmbeddings as TaskEmbeddings
from fennec.proxy.store import load_shipped_text_embeddings as load_shipped_text_embeddings


def __getattr__(name: str):
    # the concrete proxies pull in heavier modules lazily
    if name == "TextProxy":
        from fennec.proxy.text import TextProxy

        return TextProxy
    if name == "TimmProxy":
        from fennec.proxy.timm_proxy import TimmProxy

        return TimmProxy
    if name == "OpenCLIPProxy":
        from fennec.proxy.openclip import OpenCLIPProxy

        return OpenCLIPProxy
    raise AttributeError(f"module 'fennec.proxy' has no attribute {name!r}")
