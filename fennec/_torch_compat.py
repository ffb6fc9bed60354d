"""The torchvision remedy lives in :mod:`archi2vec._torch_compat` (the lower layer: fennec depends on
archi2vec, never the reverse); re-exported here for fennec's modules."""

from archi2vec._torch_compat import ensure_torchvision as ensure_torchvision
