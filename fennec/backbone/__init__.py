"""Pre-trained backbones: building timm / packaged models with their weights, their preprocessing, and
feature extraction (torch lives here)."""
