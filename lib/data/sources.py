"""Named files the course downloads on Colab (full mode), as :class:`~lib.data.download.Resource`s.

Smoke mode and the tests never fetch these: they use procedural data in the same formats. A
notebook in full mode asks for a resource by name::

    from lib.data import sources
    obj_path = sources.fetch_cow_mesh(allow_unverified=True)  # cow.obj, .mtl and texture beside
    path = sources.fetch("cow_texture")  # any single entry of SOURCES

Each entry should pin its sha256. An entry whose ``sha256`` is None (the cow, for now) has not
been verified: :func:`lib.data.download.fetch` refuses it unless the caller passes
``allow_unverified=True``, and then prints a loud warning.
"""

from __future__ import annotations

from pathlib import Path

from lib.data.download import Resource
from lib.data.download import fetch as _fetch

_PYTORCH3D_COW = "https://dl.fbaipublicfiles.com/pytorch3d/data/cow_mesh/"
_COW_MANUAL = (
    "The PyTorch3D tutorials use this cow (derived from Keenan Crane's 'Spot'). Its three files "
    "(cow.obj, cow.mtl, cow_texture.png) must sit in the same folder, because cow.obj names "
    "cow.mtl and cow.mtl names cow_texture.png. With a shell: wget -P <cache folder> "
    f"{_PYTORCH3D_COW}cow.obj (and likewise cow.mtl, cow_texture.png).")

# The cow's sha256 values are not pinned (None): the host was unreachable from the machine this
# registry was written on, and no published checksum or byte-exact copy of the files could be
# found. They must be filled in from a verified download: fetch once on Colab with
# allow_unverified=True, check that the mesh renders as in the PyTorch3D tutorials, then paste
# lib.data.download.sha256sum(path) of each file here (and its size, in bytes).
SOURCES: dict[str, Resource] = {
    "cow_obj": Resource(
        "cow.obj", sha256=None, urls=[_PYTORCH3D_COW + "cow.obj"],
        description="PyTorch3D tutorial cow mesh: geometry and UVs (Wavefront OBJ)",
        manual=_COW_MANUAL),
    "cow_mtl": Resource(
        "cow.mtl", sha256=None, urls=[_PYTORCH3D_COW + "cow.mtl"],
        description="PyTorch3D tutorial cow mesh: material file naming the texture",
        manual=_COW_MANUAL),
    "cow_texture": Resource(
        "cow_texture.png", sha256=None, urls=[_PYTORCH3D_COW + "cow_texture.png"],
        description="PyTorch3D tutorial cow mesh: texture map (PNG)",
        manual=_COW_MANUAL),
}

COW_MESH = ("cow_obj", "cow_mtl", "cow_texture")


def get(name: str) -> Resource:
    """Return the registered resource called ``name``.

    Raises:
        ValueError: ``name`` is not in :data:`SOURCES` (the message lists the known names).
    """
    if name not in SOURCES:
        raise ValueError(f"unknown resource {name!r}; known: {sorted(SOURCES)}")
    return SOURCES[name]


def fetch(name: str, **fetch_kwargs) -> Path:
    """Fetch the registered resource ``name``; keyword arguments go to
    :func:`lib.data.download.fetch` (``cache_dir``, ``retries``, ``allow_unverified``, ...)."""
    return _fetch(get(name), **fetch_kwargs)


def fetch_cow_mesh(**fetch_kwargs) -> Path:
    """Fetch cow.obj, cow.mtl and cow_texture.png into one cache folder; return cow.obj's path.

    ``pytorch3d.io.load_objs_as_meshes([path])`` loads it with its texture. Keyword arguments
    go to :func:`lib.data.download.fetch` (until the sha256 values are pinned, the call needs
    ``allow_unverified=True``).
    """
    paths = [fetch(name, **fetch_kwargs) for name in COW_MESH]
    return paths[0]
