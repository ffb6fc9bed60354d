"""The model zoo: one identity per model (registry), its side information, and the placement of models
that have no history (architecture -> archi2vec vector -> placement)."""
