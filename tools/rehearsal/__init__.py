"""Full mode, rehearsed: miniature stand-ins in the real formats, served the way the real ones are.

Every notebook's full-mode cells (``DATA="real"``) download files through ``lib.data.sources``
and load pretrained models with ``from_pretrained``. CI runs those cells on a CPU with no
network, at tiny sizes (``SIZES="tiny"``), against stand-ins written here from a seed:

- ``files/``: every file a notebook fetches (the cow, lego in both layouts, the truck scene, SRN
  cars, R2N2 chairs, a5_data.zip), in the real archive types, folder names and dtypes
  (:mod:`tools.rehearsal.files`), served by a local HTTP server on 127.0.0.1
  (:mod:`tools.rehearsal.server`), so ``lib.data.download`` fetches, verifies, caches and
  extracts them as it would the real ones;
- ``hf/``: a Hugging Face hub cache holding tiny randomly initialised models under the real hub
  ids (Stable Diffusion 1.5, Depth Anything V2 Small, CLIP ViT-B/32), read with
  ``HF_HUB_OFFLINE=1``; ``torch/``: torchvision's ResNet-18 weights file (random values, real
  shapes) where torchvision keeps its downloads (:mod:`tools.rehearsal.models`);
- ``photo.png``: a user's RGBA photo for notebook 09's ``IMAGE_PATH``.

The registry is redirected at one point only: ``lib.data.sources.rehearsal`` reads the file
``rehearsal.json`` written here (named by ``$COURSE3D_REHEARSAL``), which holds the stand-ins'
127.0.0.1 URLs, sizes and sha256.

By hand (a maintainer checking a notebook's full-mode cells)::

    python -m tools.rehearsal --root /tmp/rehearsal     # writes, serves, prints the environment
    # in another shell: export the printed variables, then
    python -m tools.nbrun --nb 04 --smoke 0 --data real --sizes tiny
"""
from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

from tools.rehearsal.server import serve

MANIFEST = "standins.json"
REHEARSAL_FILE = "rehearsal.json"
PHOTO = "photo.png"


def write_photo(path, seed: int = 0, size: int = 96) -> Path:
    """A user's photo for notebook 09: an RGBA PNG (alpha = the object's mask) of a procedural
    chair on a transparent background, as a phone cut-out app would save it."""
    import imageio.v3 as iio
    import numpy as np

    from lib.methods.neuralift.lift import procedural_lift_input
    from lib.images import to_uint8

    inp = procedural_lift_input("chair", seed=seed, image_size=size, azimuth=40.0, elevation=10.0)
    rgba = np.concatenate([to_uint8(inp["image"]), to_uint8(inp["mask"].float()[..., None])], axis=-1)
    path = Path(path)
    iio.imwrite(path, rgba)
    return path


def write_standins(root, seed: int = 0) -> dict:
    """Write every stand-in under ``root`` (``files/``, ``hf/``, ``torch/``, ``photo.png``) and
    ``root/standins.json``; return its content ``{"files": {name: {path, sha256, size}},
    "hub_ids": [...], "torch": [...], "seed": seed}``. Skips the work when ``standins.json``
    already records the same seed."""
    from tools.rehearsal.files import write_files
    from tools.rehearsal.models import write_hub_cache, write_torch_hub

    root = Path(root)
    manifest_path = root / MANIFEST
    if manifest_path.is_file():
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("seed") == seed:
            return manifest
    root.mkdir(parents=True, exist_ok=True)
    manifest = {"seed": seed, "files": write_files(root / "files", seed=seed),
                "hub_ids": write_hub_cache(root / "hf", seed=seed),
                "torch": write_torch_hub(root / "torch", seed=seed)}
    write_photo(root / PHOTO, seed=seed)
    manifest_path.write_text(json.dumps(manifest, indent=1, sort_keys=True))
    return manifest


def rehearsal_env(root, base_url: str, manifest: dict) -> dict:
    """Write ``root/rehearsal.json`` (the stand-ins' URLs under ``base_url``, sizes, sha256) and
    return the environment a rehearsal runs in: the rehearsal file, a download cache of its own, the
    offline hub cache, torchvision's download folder, one thread."""
    from lib.data.download import CACHE_ENV, REHEARSAL_ENV
    from lib.data.sources import REHEARSAL_FORMAT

    root = Path(root).resolve()
    resources = {name: {"url": base_url + entry["path"], "sha256": entry["sha256"], "size": entry["size"]}
                 for name, entry in manifest["files"].items()}
    (root / REHEARSAL_FILE).write_text(json.dumps({"format": REHEARSAL_FORMAT, "resources": resources}, indent=1))
    return {REHEARSAL_ENV: str(root / REHEARSAL_FILE), CACHE_ENV: str(root / "cache"),
            "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_HUB_CACHE": str(root / "hf"),
            "HF_HOME": str(root / "hf_home"), "TORCH_HOME": str(root / "torch"),
            "OMP_NUM_THREADS": "1"}  # tiny tensors: one thread is faster, and steadier on a busy machine


@contextlib.contextmanager
def rehearsal(root, seed: int = 0):
    """Write the stand-ins (once), serve them, and set the rehearsal environment in this process
    (a notebook kernel started inside the block inherits it); restore the environment after.

    Yields:
        the environment set (a dict).
    """
    manifest = write_standins(root, seed)
    with serve(Path(root) / "files") as base_url:
        env = rehearsal_env(root, base_url, manifest)
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            yield env
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
