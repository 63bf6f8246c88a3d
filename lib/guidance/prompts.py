"""Prompts: view-dependent wording, validation, and a cache of text embeddings.

View rule (the only one in the course). Azimuth and elevation in degrees follow
:func:`lib.cameras.orbit_poses`: a camera at azimuth ``az``, elevation ``el`` sits at
``(cos el sin az, sin el, cos el cos az)``, so azimuth 0 is on the +z axis, and the object's front
faces +z (azimuth 0 sees the front). With ``a`` = azimuth wrapped to (-180, 180]:

    ==================  ============
    condition (first)   view word
    ==================  ============
    el > 60             "overhead"
    |a| < 45            "front"
    |a| > 135           "back"
    otherwise           "side"
    ==================  ============

Boundaries: 45 and 135 are "side", 180 and -180 are "back", elevation exactly 60 is not
"overhead". The prompt becomes ``f"{prompt}, {view} view"``, e.g. ``"a chair, front view"``.

Example:
    >>> view_prompt("a chair", 170.0, 10.0)
    'a chair, back view'
    >>> view_prompt("a chair", -90.0, 75.0)
    'a chair, overhead view'
"""
from __future__ import annotations

import gc
from typing import Callable, Dict, List, Optional, Sequence, Union

import torch

VIEW_WORDS = ("front", "side", "back", "overhead")
OVERHEAD_ELEVATION = 60.0
FRONT_HALF_ANGLE = 45.0
BACK_HALF_ANGLE = 45.0  # |a| > 180 - 45 = 135 is "back"
MAX_WORDS = 60  # CLIP's text encoder reads 77 tokens; 60 words leave room for the view words


def validate_prompt(prompt, max_words: int = MAX_WORDS) -> str:
    """``prompt`` stripped of surrounding whitespace; ValueError when it is not a string, is
    empty (or blank), or has more than ``max_words`` whitespace-separated words."""
    if not isinstance(prompt, str):
        raise ValueError(f"prompt must be a non-empty string, got {type(prompt).__name__}")
    text = prompt.strip()
    if not text:
        raise ValueError(f"prompt must be a non-empty string of 1..{max_words} words, got {prompt!r}")
    n = len(text.split())
    if n > max_words:
        raise ValueError(f"prompt must have at most {max_words} words, got {n} "
                         f"({text[:40]!r}...)")
    return text


def wrap_azimuth(azimuth_deg: float) -> float:
    """Azimuth in degrees wrapped to (-180, 180] (-180 -> 180)."""
    a = float(azimuth_deg) % 360.0  # [0, 360)
    return a - 360.0 if a > 180.0 else a


def view_word(azimuth_deg: float, elevation_deg: float) -> str:
    """One of ``VIEW_WORDS`` for a camera at (azimuth, elevation) degrees; the rule in the module
    docstring."""
    if float(elevation_deg) > OVERHEAD_ELEVATION:
        return "overhead"
    a = abs(wrap_azimuth(azimuth_deg))
    if a < FRONT_HALF_ANGLE:
        return "front"
    if a > 180.0 - BACK_HALF_ANGLE:
        return "back"
    return "side"


def view_prompt(prompt: str, azimuth_deg: float, elevation_deg: float) -> str:
    """``f"{prompt}, {view} view"`` with ``view = view_word(azimuth_deg, elevation_deg)``;
    ``prompt`` is validated and stripped first (:func:`validate_prompt`)."""
    return f"{validate_prompt(prompt)}, {view_word(azimuth_deg, elevation_deg)} view"


def view_prompts(prompt: str, azimuths, elevations, view_dependent: bool = True) -> list:
    """One prompt per camera: :func:`view_prompt` of each (azimuth, elevation) (degrees; floats or
    (V,) tensors) when ``view_dependent``, else ``prompt`` itself V times."""
    az = azimuths.tolist() if hasattr(azimuths, "tolist") else list(azimuths)
    el = elevations.tolist() if hasattr(elevations, "tolist") else list(elevations)
    return [view_prompt(prompt, a, e) if view_dependent else prompt for a, e in zip(az, el)]


class TextEmbeddingCache:
    """Encodes each prompt once through ``encode_fn`` and keeps its embedding.

    Args:
        encode_fn: ``(list[str]) -> (B, L, D)`` float tensor, one row per prompt (e.g.
            :func:`lib.guidance.stable_diffusion.sd_text_encode_fn`, or the offline prior's tiny
            encoder).

    ``cache(prompts)`` returns (B, L, D) for a string or a list of strings, calling ``encode_fn``
    once for the prompts not yet cached (detached, on encode_fn's device and dtype).
    :meth:`free_encoder` drops the encoder (so its GPU memory can be reclaimed); cached prompts
    still work afterwards, new ones raise RuntimeError.

    Example:
        >>> cache = TextEmbeddingCache(lambda ps: torch.ones(len(ps), 3, 4))
        >>> cache(["a", "b"]).shape, cache("a").shape
        (torch.Size([2, 3, 4]), torch.Size([1, 3, 4]))
    """

    def __init__(self, encode_fn: Callable[[List[str]], torch.Tensor]):
        self.encode_fn: Optional[Callable] = encode_fn
        self._cache: Dict[str, torch.Tensor] = {}

    def __len__(self) -> int:
        return len(self._cache)

    def __contains__(self, prompt: str) -> bool:
        return prompt in self._cache

    def __call__(self, prompts: Union[str, Sequence[str]]) -> torch.Tensor:
        prompts = [prompts] if isinstance(prompts, str) else list(prompts)
        if not prompts:
            raise ValueError("prompts must be a string or a non-empty list of strings, got []")
        missing = list(dict.fromkeys(p for p in prompts if p not in self._cache))
        if missing:
            if self.encode_fn is None:
                raise RuntimeError(f"the text encoder was freed; prompts not cached: {missing}")
            emb = self.encode_fn(missing)
            if not torch.is_tensor(emb) or emb.ndim != 3 or emb.shape[0] != len(missing):
                raise ValueError(f"encode_fn must return ({len(missing)}, L, D), got "
                                 f"{tuple(emb.shape) if torch.is_tensor(emb) else type(emb)}")
            for p, e in zip(missing, emb.detach()):
                self._cache[p] = e
        return torch.stack([self._cache[p] for p in prompts])

    def free_encoder(self) -> None:
        """Drop the reference to ``encode_fn`` and, when CUDA is available, empty its cache.
        (Memory is only returned if nothing else still holds the encoder.)"""
        self.encode_fn = None
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
