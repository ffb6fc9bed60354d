"""History -> subspace -> index: the masked low-rank factorisation (:mod:`fennec.subspace.factorization`)
and the exact top-K index over its model vectors (:mod:`fennec.subspace.index`). Pure NumPy."""

from fennec.subspace.factorization import TransferSubspace as TransferSubspace
