"""Prompts: the course's one prompt grammar (view-dependent wording and validation).

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

