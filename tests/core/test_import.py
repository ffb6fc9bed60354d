"""``import fennec`` must stay light: no torch, timm, open_clip or faiss at import time."""

from __future__ import annotations

import json
import subprocess
import sys


def test_import_fennec_does_not_import_heavy_libraries():
    code = ("import sys, json, fennec, fennec.cli; "
            "print(json.dumps({m: m in sys.modules for m in ('torch', 'timm', 'open_clip', 'faiss', 'torchvision')}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert not any(loaded.values()), loaded


def test_torchvision_remedy_makes_timm_importable():
    code = ("from fennec._torch_compat import ensure_torchvision; ensure_torchvision(); "
            "import timm, torchvision; m = timm.create_model('resnet18', pretrained=False); print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().endswith("ok")
