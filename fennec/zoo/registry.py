"""One identity per model: the registry that resolves every name a user or a history gives a model.

The shipped registry (``data/zoo/registry.csv``, built by ``scripts/build_zoo.py``; provenance in
``data/zoo/PROVENANCE.md``) has one row per set of weights:

- ``timm``: a timm pretrained tag (``resnet50.tv_in1k``), side information from timm's published tables;
- ``torchvision``: torchvision weights that timm does not have (``torchvision/mobilenet_v2.IMAGENET1K_V1``);
- ``hf-hub``: a Hugging Face hub checkpoint of a shipped history (``hf-hub:google/vit-large-patch16-224``);
- ``local``: a checkpoint known only by the history that measured it (``byol``, ``alexnet%cifar10``).

A name resolves, in this order: a model id; an alias (a history's own id such as sfda's ``resnet50``,
``<history>/<id>``, a torchvision name ``torchvision/<builder>[.<WEIGHTS>]``, a hub id ``org/name``, a
packaged model ``efficientnet-lite0``); a bare timm architecture (to timm's default tag, as
``timm.create_model(name, pretrained=True)`` does); a bare torchvision builder (to its default weights);
``hf-hub:timm/<tag>``; ``NAME@FILE`` (the architecture of ``NAME`` with the weights in ``FILE``: another
model, linked to ``NAME`` by architecture). Models outside the registry come with their side information
from a user table (:meth:`ModelRegistry.with_models`). Nothing here builds a network or imports torch.
"""

from __future__ import annotations

import difflib
import logging
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from fennec.errors import SchemaError, UnknownIdError
from fennec.tabular import Table

if TYPE_CHECKING:
    import pandas as pd

logger = logging.getLogger(__name__)

SIDE_COLUMNS = ["model_id", "kind", "arch", "top1", "top5", "params_m", "gmacs", "img_size", "pretraining",
                "family"]
NUMERIC = ("top1", "top5", "params_m", "gmacs", "img_size")
#: columns a user's side-information table may have (``model_id`` required, every other optional)
USER_COLUMNS = ("model_id", "top1", "top5", "params_m", "gmacs", "img_size", "pretraining", "timm_arch",
                "arch", "family", "aliases")


@dataclass(frozen=True)
class Resolution:
    """How one name resolved: ``model_id`` is the canonical id (None when unresolved), ``how`` the rule used
    (``id``, ``alias``, ``timm default tag``, ``torchvision default``, ``weights file``, ``user table``,
    ``unresolved``) and ``note`` a sentence for the user (the reason, for an unresolved name)."""

    name: str
    model_id: str | None
    how: str
    note: str = ""
    weights: str | None = None

    @property
    def resolved(self) -> bool:
        return self.model_id is not None


class ModelRegistry:
    """Model identities and their side information (a table; see the module docstring).

    Build it with :meth:`load` (the shipped registry, cached) and extend it with :meth:`with_models`.
    ``table`` is a :class:`~fennec.tabular.Table` or a DataFrame with the registry's columns; ``frame`` is
    the registry as a DataFrame (built on first access).
    """

    def __init__(self, table: Table | pd.DataFrame, *, architectures: Iterable[str] = ()) -> None:
        self.table = table = Table.of(table)
        ids = list(table["model_id"])
        self._row = {m: i for i, m in enumerate(ids)}
        self._alias: dict[str, str] = {}
        for mid, aliases in zip(ids, table["aliases"], strict=True):
            for a in filter(None, str(aliases).split(";")):
                self._alias.setdefault(a, mid)
        self._default = {a: m for a, m in zip(table["default_for"], ids, strict=True) if a}
        self._archs = set(architectures) | set(table["arch"]) - {""}

    @cached_property
    def frame(self) -> pd.DataFrame:
        return self.table.to_frame()

    # ------------------------------------------------------------------ construction
    @classmethod
    def load(cls) -> ModelRegistry:
        """The shipped registry (read once per process)."""
        return _shipped()

    def with_models(self, table: pd.DataFrame | Table | str | os.PathLike[str], *, name: str | None = None
                    ) -> ModelRegistry:
        """A registry that also knows the models of a user table (``model_id`` plus any of
        :data:`USER_COLUMNS`; a row for a known id overrides its side information)."""
        import pandas as pd

        user = read_user_models(table, name=name)
        keep = self.frame[~self.frame["model_id"].isin(user["model_id"])]
        return ModelRegistry(pd.concat([keep, user], ignore_index=True), architectures=self._archs)

    def __contains__(self, model_id: object) -> bool:
        return model_id in self._row

    def __len__(self) -> int:
        return len(self.table)

    # ------------------------------------------------------------------ resolution
    def resolve(self, name: str) -> Resolution:
        """Resolve one name (see the module docstring for the order of the rules)."""
        text = str(name).strip()
        if not text:
            return Resolution(text, None, "unresolved", "empty model name")
        if "@" in text and not text.startswith("hf-hub:"):
            return self._resolve_file(text)
        for candidate in (text, text.lower()):
            hit = self._lookup(candidate)
            if hit is not None:
                return Resolution(text, hit[0], hit[1], hit[2])
        return Resolution(text, None, "unresolved", self._unresolved_reason(text))

    def resolve_many(self, names: Sequence[str], *, strict: bool = False, what: str = "model") -> list[Resolution]:
        """Resolve names in order; ``strict`` raises :class:`UnknownIdError` on the first unresolved one."""
        out = [self.resolve(n) for n in names]
        bad = [r for r in out if not r.resolved]
        if strict and bad:
            raise UnknownIdError(f"unknown {what} {bad[0].name!r}: {bad[0].note}")
        return out

    def canonical(self, name: str) -> str:
        """The canonical id of ``name``, or ``name`` itself when it resolves to nothing."""
        res = self.resolve(name)
        return res.model_id if res.resolved else str(name).strip()

    def _lookup(self, text: str) -> tuple[str, str, str] | None:
        if text in self._row:
            return text, "id", ""
        if text in self._alias:
            mid = self._alias[text]
            default = self._default.get(text)
            note = (f"{text!r} is a history's name for {mid}; timm's default weights for the architecture are "
                    f"{default} (name them to rank those)") if default and default != mid else ""
            return mid, "alias", note
        if text in self._default:
            return self._default[text], "timm default tag", ""
        if f"torchvision/{text}" in self._alias:
            return self._alias[f"torchvision/{text}"], "torchvision default", ""
        if text.startswith("hf-hub:timm/") and text[len("hf-hub:timm/"):] in self._row:
            return text[len("hf-hub:timm/"):], "id", ""
        if text.startswith("hf-hub:") and text[len("hf-hub:"):] in self._alias:
            return self._alias[text[len("hf-hub:"):]], "alias", ""
        return None

    def _resolve_file(self, text: str) -> Resolution:
        base, _, weights = text.partition("@")
        if not base or not weights:
            return Resolution(text, None, "unresolved", "expected NAME@WEIGHTS_FILE")
        hit = self._lookup(base)
        arch = self.arch_of(hit[0]) if hit else (base if base in self._archs else "")
        if not arch:
            return Resolution(text, None, "unresolved",
                              f"{base!r} is not a model or timm architecture this registry knows")
        return Resolution(text, text, "weights file", f"architecture {arch} with the weights in {weights}",
                          weights=weights)

    def _unresolved_reason(self, text: str) -> str:
        if text in self._archs:
            return (f"timm architecture {text!r} has no pretrained weights in the registry; "
                    f"give {text}@WEIGHTS_FILE or a --candidates-file row")
        close = difflib.get_close_matches(text, list(self._row) + list(self._alias) + list(self._default), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        return f"not in the model registry ({len(self)} models){hint}"

    # ------------------------------------------------------------------ side information
    def arch_of(self, model_id: str) -> str:
        """The timm architecture of a model id ('' when unknown); ``NAME@FILE`` ids use NAME's."""
        if model_id in self._row:
            return str(self.table["arch"][self._row[model_id]])
        if "@" in model_id:
            res = self.resolve(model_id.partition("@")[0])
            return self.arch_of(res.model_id) if res.resolved else model_id.partition("@")[0]
        return ""

    def side_table(self, model_ids: Sequence[str]) -> pd.DataFrame:
        """Side information of ``model_ids`` (rows in that order, NaN / '' where unknown).

        A ``NAME@FILE`` id gets its architecture's parameter count and GMACs (from the architecture's
        default tag); its ImageNet top-1 and pre-training are unknown (they belong to the weights)."""
        import pandas as pd

        rows = [self._side_row(m) for m in model_ids]
        out = pd.DataFrame(rows, columns=SIDE_COLUMNS)
        for col in NUMERIC:
            out[col] = pd.to_numeric(out[col], errors="coerce")
        return out

    def _side_row(self, model_id: str) -> dict:
        if model_id in self._row:
            return {c: self.table[c][self._row[model_id]] for c in SIDE_COLUMNS}
        row = {c: (np.nan if c in NUMERIC else "") for c in SIDE_COLUMNS}
        row["model_id"] = model_id
        arch = self.arch_of(model_id)
        if arch:
            row.update(arch=arch, kind="file")
            donor = self._default.get(arch)
            if donor is not None:
                for c in ("params_m", "gmacs", "img_size", "family"):
                    row[c] = self.table[c][self._row[donor]]
        return row

    def history_models(self, history: str) -> dict[str, str]:
        """``{local id: canonical id}`` of the models a shipped history measured."""
        out = {}
        prefix = f"{history}:"
        for mid, hist in zip(self.table["model_id"], self.table["histories"], strict=True):
            for h in filter(None, str(hist).split(";")):
                if h.startswith(prefix):
                    out[h[len(prefix):]] = mid
        return out


def read_user_models(table: pd.DataFrame | Table | str | os.PathLike[str], *, name: str | None = None
                     ) -> pd.DataFrame:
    """Validate a user side-information table (``--candidates-file``) into registry rows."""
    import pandas as pd

    if isinstance(table, Table):
        table = table.to_frame()
    if isinstance(table, pd.DataFrame):
        frame, where = table.copy(), name or "<candidates table>"
    else:
        path = Path(table)
        if not path.is_file():
            raise FileNotFoundError(2, "candidates file not found", str(path))
        where = name or str(path)
        try:
            frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            raise SchemaError(f"{where}: cannot be read as CSV ({' '.join(str(exc).split())})") from exc
    if "model_id" not in frame.columns:
        raise SchemaError(f"{where}: needs a 'model_id' column; found {list(frame.columns)}")
    unknown = sorted(set(frame.columns) - set(USER_COLUMNS))
    if unknown:
        raise SchemaError(f"{where}: unknown column(s) {unknown}; allowed: {', '.join(USER_COLUMNS)}")
    ids = frame["model_id"].astype(str).str.strip()
    if (ids == "").any():
        raise SchemaError(f"{where}: column 'model_id' is empty on line(s) "
                          f"{', '.join(str(i + 2) for i in np.flatnonzero(ids == ''))}")
    if ids.duplicated().any():
        raise SchemaError(f"{where}: repeated model_id {sorted(set(ids[ids.duplicated()]))}")
    out = pd.DataFrame({"model_id": ids, "kind": "user", "default_for": "", "histories": "", "side_source": where})
    out["arch"] = frame.get("timm_arch", frame.get("arch", pd.Series([""] * len(frame)))).fillna("").astype(str)
    out["aliases"] = frame.get("aliases", pd.Series([""] * len(frame))).fillna("").astype(str)
    for col in NUMERIC:
        raw = frame.get(col, pd.Series([""] * len(frame))).astype(str).str.strip()
        num = pd.to_numeric(raw.replace("", np.nan), errors="coerce")
        bad = np.flatnonzero(num.isna() & (raw != ""))
        if len(bad):
            raise SchemaError(f"{where}: column {col!r} must be a number; got {raw.iloc[bad[0]]!r} on line {bad[0] + 2}")
        out[col] = num
    for col in ("pretraining", "family", "pretrain_detail"):
        out[col] = frame.get(col, pd.Series([""] * len(frame))).fillna("").astype(str)
    return out


@lru_cache(maxsize=1)
def _shipped() -> ModelRegistry:
    from fennec.data.shipped import data_dir

    path = data_dir() / "zoo" / "registry.csv"
    if not path.is_file():
        raise SchemaError(f"{path}: the model registry is missing (rebuild it with scripts/build_zoo.py)")
    table = Table.read_csv(path)
    for col in NUMERIC:
        table = table.with_column(col, np.array([_number(v) for v in table[col]], dtype=float))
    return ModelRegistry(table, architectures=_catalogue_architectures())


def _number(text: str) -> float:
    """A registry cell as a number (NaN when empty or not a number)."""
    try:
        return float(text) if text.strip() else math.nan
    except ValueError:
        return math.nan


def _catalogue_architectures() -> list[str]:
    try:
        import archi2vec

        return archi2vec.catalogue_names()
    except Exception as exc:  # no catalogue: bare architectures without weights are then unresolved
        logger.info("archi2vec catalogue unavailable (%s)", exc)
        return []
