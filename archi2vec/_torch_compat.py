"""Make ``import torchvision`` work when the installed torchvision is a CUDA build and torch is CPU-only.

The registry's torchvision 0.28.0 wheel ships a ``_C`` extension compiled against CUDA torch. With the CPU
build of torch that extension cannot load, and torchvision's import-time registration of fake kernels for
``torchvision::nms`` / ``torchvision::qnms`` then fails with ``operator torchvision::nms does not exist``.
timm and open_clip import torchvision, so they fail too.

:func:`ensure_torchvision` first tries to load torchvision's own ``_C`` library. Only if that fails does it
define the two missing operator schemas (no kernels) in a module-level :class:`torch.library.Library` that is
kept alive for the life of the process. Where torchvision loads normally, it does nothing.
Only torchvision's compiled ops (``ops.nms``, ``roi_align``, ``io.decode_image``) stay unavailable.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import sys

logger = logging.getLogger(__name__)

_LIBRARY = None  # keeps the schema definitions alive
_DONE = False

_SCHEMAS = (
    "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
)


def _load_native_ops() -> bool:
    """Try to load torchvision's compiled ops without importing torchvision."""
    import torch

    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        return False
    folder = list(spec.submodule_search_locations)[0]
    for name in os.listdir(folder):
        if name.startswith("_C") and name.endswith((".so", ".pyd")):
            try:
                torch.ops.load_library(os.path.join(folder, name))
                return True
            except (OSError, RuntimeError) as exc:
                logger.debug("torchvision native ops did not load (%s)", exc)
                return False
    return False


def ensure_torchvision() -> None:
    """Idempotently make torchvision importable on CPU-only torch. Call before importing timm/open_clip."""
    global _LIBRARY, _DONE
    if _DONE:
        return
    _DONE = True
    if "torchvision" in sys.modules:
        return
    import torch

    if _load_native_ops():
        return
    try:
        torch.ops.torchvision.nms  # noqa: B018 - already defined by someone else
        return
    except (AttributeError, RuntimeError):
        pass
    lib = torch.library.Library("torchvision", "DEF")
    for schema in _SCHEMAS:
        lib.define(schema)
    _LIBRARY = lib
    logger.debug("defined torchvision::nms/qnms schemas (torchvision compiled ops unavailable)")
