"""Load a :class:`lib.guidance.guide.Guide` by name: the course's offline prior or Stable Diffusion.

Its own module because it is the one place that knows both guides: ``lib.guidance.prior`` and
``lib.guidance.stable_diffusion`` build on ``lib.guidance.guide``, and this module builds on them
(so the import graph has no cycle).
"""
from __future__ import annotations

from lib.guidance.guide import Guide

GUIDES = ("offline prior", "stable diffusion")


def load_guide(name: str, device="cpu", prior_dir=None, sd_local_dir=None) -> Guide:
    """Load a :class:`Guide` by name (one of ``GUIDES``).

    - ``"offline prior"``: ``lib.models.text_prior.load_prior(prior_dir)`` (default
      ``lib.guidance.prior.PRIOR_DIR``, the committed ``assets/prior``), float32 on ``device``.
    - ``"stable diffusion"``: ``lib.guidance.stable_diffusion.load_stable_diffusion(local_dir=sd_local_dir)``, fp16 on
      CUDA (the loader lists every source it tried when none loads).
    """
    if name not in GUIDES:
        raise ValueError(f"load_guide: `name` must be one of {GUIDES}, got {name!r}")
    if name == "offline prior":
        from lib.models.text_prior import load_prior
        from lib.guidance.prior import PRIOR_DIR, prior_guide
        return prior_guide(*load_prior(PRIOR_DIR if prior_dir is None else prior_dir, device))
    from lib.guidance.stable_diffusion import load_stable_diffusion, sd_guide
    return sd_guide(load_stable_diffusion(device=device, local_dir=sd_local_dir))
