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
    >>> parse_view_prompt("a chair, back view")
    ('a chair', 'back')
"""
from __future__ import annotations


VIEW_WORDS = ("front", "side", "back", "overhead")
OVERHEAD_ELEVATION = 60.0
FRONT_HALF_ANGLE = 45.0
BACK_HALF_ANGLE = 45.0  # |a| > 180 - 45 = 135 is "back"
MAX_WORDS = 60  # CLIP's text encoder reads 77 tokens; 60 words leave room for the view words
# (azimuth range, elevation range) in degrees strictly inside each view word's region of the rule
# above, at least 5 degrees from a boundary: where to put a camera that a prompt's view word names
# (the offline prior's training views; tests/test_guidance.py checks them against view_word)
VIEW_RANGES = {"front": ((-40.0, 40.0), (-10.0, 50.0)), "side": ((50.0, 130.0), (-10.0, 50.0)),
               "back": ((140.0, 220.0), (-10.0, 50.0)), "overhead": ((0.0, 360.0), (62.0, 80.0))}


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


def parse_view_prompt(prompt: str) -> tuple[str, str | None]:
    """The inverse of :func:`view_prompt`: ``"a chair, side view"`` -> ``("a chair", "side")``; a
    prompt without a view part gives ``(prompt, None)``. ValueError when the part after the last
    comma is not "<one of VIEW_WORDS> view"."""
    head, comma, tail = validate_prompt(prompt).rpartition(",")
    if not comma:
        return prompt.strip(), None
    words = tail.split()
    if len(words) != 2 or words[0] not in VIEW_WORDS or words[1] != "view" or not head.strip():
        raise ValueError(f"a view prompt ends in ', <view> view' with a view in {VIEW_WORDS}, got {prompt!r}")
    return head.strip(), words[0]


def view_prompts(prompt: str, azimuths, elevations, view_dependent: bool = True) -> list:
    """One prompt per camera: :func:`view_prompt` of each (azimuth, elevation) (degrees; floats or
    (V,) tensors) when ``view_dependent``, else ``prompt`` itself V times."""
    az = azimuths.tolist() if hasattr(azimuths, "tolist") else list(azimuths)
    el = elevations.tolist() if hasattr(elevations, "tolist") else list(elevations)
    return [view_prompt(prompt, a, e) if view_dependent else prompt for a, e in zip(az, el)]

