"""Named files the course downloads on Colab (full mode), as :class:`~lib.data.download.Resource`s.

Smoke mode and the tests never fetch these: they use procedural data in the same formats. A
notebook in full mode asks for a resource by name::

    from lib.data import sources
    obj_path = sources.fetch_cow_mesh()  # cow.obj, with cow.mtl and cow_texture.png beside it
    path = sources.fetch("cow_texture")  # any single entry of SOURCES

An entry pins its sha256 (and size): every mirror's copy is checked against it, and a mirror that
serves other bytes is rejected. An entry whose ``sha256`` is None has not been verified yet:
:func:`lib.data.download.fetch_resource` refuses it unless the caller passes
``allow_unverified=True``, and then prints a loud warning.

Rehearsals: CI runs every notebook's full-mode cells against miniature stand-ins in the real
formats (``tools/rehearsal``). The one point where this registry can be redirected is
:func:`rehearsal`: when ``$COURSE3D_REHEARSAL`` names a rehearsal file, :func:`get` and
:func:`truck_resources` take each entry's URL, size and sha256 from it. The file must say
``"format": "course3d-rehearsal/1"`` and every URL in it must be on ``http://127.0.0.1``, so a
notebook cannot be left pointed at stand-ins by accident; every fetch then prints that it is a
rehearsal. Nothing in a notebook sets the variable: only the rehearsal tests and
``python -m tools.rehearsal`` do.

Example:
    >>> get("cow_obj").size, get("cow_obj").urls[0].startswith("https://raw.githubusercontent.com/")
    (330659, True)
"""

from __future__ import annotations

import dataclasses
import json
import sys
import urllib.parse
from pathlib import Path

from lib.data.download import Resource, fetch_resource, rehearsal_file

REHEARSAL_FORMAT = "course3d-rehearsal/1"
_REHEARSAL_CACHE: dict = {}


def _mirrored(bases: list[str], manual: str,
              files: dict[str, tuple[str, int | None, str | None, str]]) -> dict[str, Resource]:
    """Resources served under the same folder URLs: ``files`` maps a registry name to
    ``(filename, size, sha256, description)``; each base URL (ending in "/") is one mirror."""
    return {name: Resource(filename, sha256=sha256, size=size, urls=[base + filename for base in bases],
                           description=description, manual=manual)
            for name, (filename, size, sha256, description) in files.items()}


# ------------------------------------------------------------------- the cow (notebooks 01, 05)
# The PyTorch3D tutorials' cow. The 16-825 course (learning3d/assignment1 on GitHub) publishes the
# same three files; raw URLs at a fixed commit are immutable, so that copy is the first mirror and
# the pins below are its bytes. PyTorch3D's own host comes second: a copy whose bytes differ from
# the pin is rejected there (DownloadError says "checksum mismatch" for that URL).
_COW_COMMIT = "e3c25fbd7a6ae8d0212cf00c791f621483e51a04"
_COW_MIRRORS = [f"https://raw.githubusercontent.com/learning3d/assignment1/{_COW_COMMIT}/data/",
                "https://dl.fbaipublicfiles.com/pytorch3d/data/cow_mesh/"]
_COW_MANUAL = (
    "The PyTorch3D tutorials use this cow (derived from Keenan Crane's 'Spot'). Its three files "
    "(cow.obj, cow.mtl, cow_texture.png) must sit in the same folder, because cow.obj names "
    "cow.mtl and cow.mtl names cow_texture.png. With a shell: wget -P <cache folder> "
    f"{_COW_MIRRORS[0]}cow.obj (and likewise cow.mtl, cow_texture.png).")
SOURCES: dict[str, Resource] = _mirrored(_COW_MIRRORS, _COW_MANUAL, {
    "cow_obj": ("cow.obj", 330659,
                "62337f06b4aa4f2eaa95f854553a02039d853365a78b0a581c26ece5691a6d99",
                "PyTorch3D tutorial cow mesh: geometry and UVs (Wavefront OBJ)"),
    "cow_mtl": ("cow.mtl", 155,
                "ce6398d52486f81f2c329b1683ad4fedce970471aa36e589e05c5177432db6cb",
                "PyTorch3D tutorial cow mesh: material file naming the texture"),
    "cow_texture": ("cow_texture.png", 78699,
                    "cddabbae52a666173e7953e238b88340d285044dc20b36f8ed3f1a41db534fa5",
                    "PyTorch3D tutorial cow mesh: texture map (PNG)"),
})

COW_MESH = ("cow_obj", "cow_mtl", "cow_texture")


def rehearsal() -> dict | None:
    """The stand-ins of a rehearsal, ``{name: {"url", "sha256", "size"}}``, or None outside one.

    Read from the JSON file named by ``$COURSE3D_REHEARSAL`` (written by ``tools.rehearsal``:
    ``{"format": "course3d-rehearsal/1", "resources": {name: {...}}}``; truck files are named
    ``"truck/<path>"``). Prints a banner the first time a process reads it.

    Raises:
        ValueError: the file is missing or malformed, is not a rehearsal file, or names a URL
            that is not on ``http://127.0.0.1`` (a rehearsal never leaves the machine).
    """
    path = rehearsal_file()
    if path is None:
        return None
    if path in _REHEARSAL_CACHE:
        return _REHEARSAL_CACHE[path]
    where = f"COURSE3D_REHEARSAL={path}"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise ValueError(f"{where}: cannot read the rehearsal file ({err}); unset COURSE3D_REHEARSAL "
                         "to download the real files") from None
    if not isinstance(data, dict) or data.get("format") != REHEARSAL_FORMAT:
        raise ValueError(f"{where}: not a rehearsal file (expected \"format\": \"{REHEARSAL_FORMAT}\"); "
                         "unset COURSE3D_REHEARSAL to download the real files")
    resources = data.get("resources")
    if not isinstance(resources, dict) or not resources:
        raise ValueError(f"{where}: expected a non-empty \"resources\" object")
    for name, entry in resources.items():
        url = entry.get("url", "") if isinstance(entry, dict) else ""
        host = urllib.parse.urlsplit(url).hostname
        if not url.startswith("http://") or host != "127.0.0.1":
            raise ValueError(f"{where}: resource {name!r} has URL {url!r}; a rehearsal serves its stand-ins "
                             "from http://127.0.0.1 only")
    print(f"REHEARSAL: every download comes from the stand-ins listed in {path}, not from the real hosts",
          file=sys.stderr)
    _REHEARSAL_CACHE[path] = resources
    return resources


def _rehearsed(name: str, resource: Resource, stand_ins: dict) -> Resource:
    if name not in stand_ins:
        raise ValueError(f"the rehearsal file {rehearsal_file()} has no stand-in for {name!r}")
    entry = stand_ins[name]
    return dataclasses.replace(resource, urls=[entry["url"]], sha256=entry["sha256"], size=entry["size"],
                               description=f"REHEARSAL stand-in for: {resource.description}")


def get(name: str) -> Resource:
    """Return the registered resource called ``name`` (during a rehearsal: its stand-in, see
    :func:`rehearsal`).

    Raises:
        ValueError: ``name`` is not in :data:`SOURCES` (the message lists the known names), or a
            rehearsal file has no stand-in for it.
    """
    if name not in SOURCES:
        raise ValueError(f"unknown resource {name!r}; known: {sorted(SOURCES)}")
    stand_ins = rehearsal()
    return SOURCES[name] if stand_ins is None else _rehearsed(name, SOURCES[name], stand_ins)


def fetch(name: str, **fetch_kwargs) -> Path:
    """Fetch the registered resource ``name``; keyword arguments go to
    :func:`lib.data.download.fetch_resource` (``cache_dir``, ``retries``, ``allow_unverified``, ...)."""
    return fetch_resource(get(name), **fetch_kwargs)


def fetch_cow_mesh(**fetch_kwargs) -> Path:
    """Fetch cow.obj, cow.mtl and cow_texture.png (pinned) into one cache folder; return cow.obj's path.

    ``lib.data.mesh_io.load_obj(path)`` reads it, as does
    ``pytorch3d.io.load_objs_as_meshes([path])`` with its texture. Keyword arguments go to
    :func:`lib.data.download.fetch_resource`.
    """
    paths = [fetch(name, **fetch_kwargs) for name in COW_MESH]
    return paths[0]


# ------------------------------------------------------------------ NeRF data (notebook 04, 05)
# sha256 values are None (not pinned yet): the hosts were unreachable from the
# machine these entries were written on and no published checksums were found. Pin them from a
# verified download (fetch once with allow_unverified=True, check the images and cameras load and
# look right, then paste lib.data.download.sha256sum(path) and the size here).
_PT3D_NERF = "https://dl.fbaipublicfiles.com/pytorch3d_nerf_data/"
_PT3D_NERF_MANUAL = (
    "PyTorch3D's NeRF project (projects/nerf, dataset.py) downloads <name>.pth (cameras and "
    "train/val/test split) and <name>.png (all images stacked vertically) from "
    f"{_PT3D_NERF}; put both files side by side in the cache folder. Licence: see "
    f"{_PT3D_NERF}<name>_license.txt.")
_NERF_SYNTHETIC_MANUAL = (
    "The NeRF authors' 'nerf_synthetic.zip' (all eight Blender scenes, about 1.7 GB) is in the "
    "official NeRF data folder on Google Drive (https://drive.google.com/drive/folders/"
    "128yBriW1IG_3NJ5Rp7APSTZsJqdJdfc1). Download it in a browser when Drive's quota refuses "
    "gdown, and put it in the cache folder; fetch then extracts it.")
SOURCES["nerf_synthetic"] = Resource(
    "nerf_synthetic.zip", sha256=None, extract=True,
    urls=["gdrive://18JxhpWD-4ZmuFKLzKlAw-w5PpzZxXOcG",
          "https://cseweb.ucsd.edu/~viscomp/projects/LF/papers/ECCV20/nerf/nerf_synthetic.zip"],
    description="NeRF-synthetic scenes (lego, chair, ...) in the Blender format, 800x800 RGBA",
    manual=_NERF_SYNTHETIC_MANUAL)
_PT3D_NERF_SCENES = {"lego": "lego (Blender synthetic)", "fern": "fern (LLFF, forward-facing)"}
_PT3D_NERF_FILES = {"cameras": ("pth", "cameras (NDC) and train/val/test split"),
                    "images": ("png", "images, stacked vertically in one PNG")}
SOURCES.update(_mirrored([_PT3D_NERF], _PT3D_NERF_MANUAL, {
    f"pt3d_{scene}_{kind}": (f"{scene}.{ext}", None, None, f"PyTorch3D NeRF project: {what} {content}")
    for scene, what in _PT3D_NERF_SCENES.items() for kind, (ext, content) in _PT3D_NERF_FILES.items()}))


def fetch_pytorch3d_nerf(name: str = "lego", **fetch_kwargs) -> Path:
    """Fetch ``<name>.pth`` and ``<name>.png`` ("lego" or "fern") of PyTorch3D's NeRF project into
    one cache folder and return the ``.pth`` path, for :func:`lib.data.blender.load_pytorch3d_nerf`.
    Keyword arguments go to :func:`lib.data.download.fetch_resource` (``allow_unverified=True`` until the
    sha256 values are pinned)."""
    if name not in ("lego", "fern"):
        raise ValueError(f"name must be 'lego' or 'fern', got {name!r}")
    images = fetch(f"pt3d_{name}_images", **fetch_kwargs)
    cameras = fetch(f"pt3d_{name}_cameras", **fetch_kwargs)
    if images.parent != cameras.parent:
        raise ValueError(f"{images} and {cameras} must be in the same folder")
    return cameras


def fetch_nerf_synthetic(scene: str = "lego", **fetch_kwargs) -> Path:
    """Fetch and extract nerf_synthetic.zip; return the folder of ``scene`` (Blender format, for
    :func:`lib.data.blender.load_blender`)."""
    root = fetch("nerf_synthetic", **fetch_kwargs)
    for candidate in (root / "nerf_synthetic" / scene, root / scene):
        if (candidate / "transforms_train.json").is_file():
            return candidate
    raise FileNotFoundError(f"no {scene}/transforms_train.json under {root}; is the archive complete?")


# ----------------------------------------------------------------------------- R2N2 (notebook 03)
# The course subsets of 3D-R2N2's ShapeNet renderings + voxels + ShapeNetCore v1 meshes, as the
# learning3dvision course publishes them on Hugging Face (layout: see lib.data.r2n2). The sha256
# values are not pinned (None): the host was unreachable from the
# machine this registry was written on and no published checksum was found. Fetch once on Colab
# with allow_unverified=True, check the data (R2N2Dataset validates every file it lists), then
# paste lib.data.download.sha256sum(path) and the size here.
_R2N2_MANUAL = (
    "The course subset of the R2N2 ShapeNet renderings (chairs: a 2.7 GB zip, 7.3 GB unzipped; "
    "the 3-class chair/car/airplane version: 13.7 GB, 48 GB unzipped) is on Hugging Face: "
    "https://huggingface.co/datasets/learning3dvision/{repo}. With git-lfs: git clone that URL, "
    "unzip {file} and pass the extracted folder to lib.data.r2n2.R2N2Dataset. ShapeNet's terms of "
    "use apply (https://shapenet.org/terms).")
SOURCES["r2n2_chairs"] = Resource(
    "r2n2_shapenet_dataset.zip", sha256=None, extract=True,
    urls=["hf://datasets/learning3dvision/r2n2_shapenet_dataset/r2n2_shapenet_dataset.zip@main"],
    description="R2N2 ShapeNet subset, chairs (03001627): renderings, 32^3 voxels, meshes, split json",
    manual=_R2N2_MANUAL.format(repo="r2n2_shapenet_dataset", file="r2n2_shapenet_dataset.zip"))
SOURCES["r2n2_3classes"] = Resource(
    "r2n2_shapenet_dataset_full.zip", sha256=None, extract=True,
    urls=["hf://datasets/learning3dvision/r2n2_shapenet_dataset_full/r2n2_shapenet_dataset_full.zip@main"],
    description="R2N2 ShapeNet subset, chair + car + airplane (too large for a free Colab disk when unzipped)",
    manual=_R2N2_MANUAL.format(repo="r2n2_shapenet_dataset_full", file="r2n2_shapenet_dataset_full.zip"))


# ------------------------------------------------------------ the truck scene (notebook 06, full mode)
# The 16-825 course's Gaussian-splatting scene (learning3d/assignment4, folder Q1/data/truck/), fetched
# file by file as raw URLs at a fixed commit (immutable), each pinned by the size and sha256 listed
# in a4_truck_sha256.tsv beside this module (202 jpg + 202 npy + 1 points file). Layout and reader:
# lib.data.truck.
_TRUCK_COMMIT = "4d7fa5f42dd42d87296d63ed550b63b8f349a58c"
_TRUCK_BASE = f"https://raw.githubusercontent.com/learning3d/assignment4/{_TRUCK_COMMIT}/Q1/data/truck/"
_TRUCK_TSV = Path(__file__).with_name("a4_truck_sha256.tsv")
TRUCK_FOLDER = "a4_truck"  # inside the cache folder: a4_truck/imgs, a4_truck/poses, a4_truck/points
_TRUCK_MANUAL = (
    "The truck scene is the folder Q1/data/truck of https://github.com/learning3d/assignment4 at commit "
    f"{_TRUCK_COMMIT}. By hand: git clone https://github.com/learning3d/assignment4 && git -C assignment4 "
    f"checkout {_TRUCK_COMMIT}, then copy assignment4/Q1/data/truck/* (imgs/, poses/, points/) into "
    f"<cache folder>/{TRUCK_FOLDER}/ (fetch_truck_scene then verifies every file), or pass that folder "
    "straight to lib.data.truck.load_truck.")


def truck_resources() -> list[tuple[str, Resource]]:
    """The 405 pinned files of the truck scene: ``[(path inside Q1/data/truck/, Resource), ...]``,
    read from ``a4_truck_sha256.tsv`` (tab-separated path, bytes, sha256; ``#`` lines are comments).
    During a rehearsal: the stand-ins named ``"truck/<path>"`` in the rehearsal file instead."""
    stand_ins = rehearsal()
    if stand_ins is not None:
        paths = sorted(name[len("truck/"):] for name in stand_ins if name.startswith("truck/"))
        if not paths:
            raise ValueError(f"the rehearsal file {rehearsal_file()} has no truck/... stand-ins")
        return [(path, _rehearsed(f"truck/{path}", Resource(path.rsplit("/", 1)[-1], sha256=None, urls=[_TRUCK_BASE],
                                                             description=f"truck scene: {path}"), stand_ins))
                for path in paths]
    entries = []
    for number, line in enumerate(_TRUCK_TSV.read_text().splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split("\t")
        if len(fields) != 3 or not fields[1].isdigit():
            raise ValueError(f"{_TRUCK_TSV} line {number}: expected 'path<TAB>bytes<TAB>sha256', got {line!r}")
        path, size, sha = fields
        entries.append((path, Resource(path.rsplit("/", 1)[-1], sha256=sha, size=int(size),
                                       urls=[_TRUCK_BASE + path], manual=_TRUCK_MANUAL,
                                       description=f"truck scene (learning3d/assignment4): {path}")))
    return entries


def fetch_truck_scene(workers: int = 8, **fetch_kwargs) -> Path:
    """Fetch the truck scene (405 pinned files, about 1 MB) into ``<cache>/a4_truck/`` with the
    assignment's layout, and return that folder, for :func:`lib.data.truck.load_truck`.

    The points file is fetched first (a failing network is reported at once, with the manual
    route in the error), then the rest on ``workers`` threads. Keyword arguments go to
    :func:`lib.data.download.fetch_resource` (``cache_dir``, ``retries``, ...); ``progress``
    defaults to False (405 small files).
    """
    from concurrent.futures import ThreadPoolExecutor

    from lib.data.download import resolve_cache_dir

    root = resolve_cache_dir(fetch_kwargs.pop("cache_dir", None)) / TRUCK_FOLDER
    fetch_kwargs.setdefault("progress", False)
    entries = sorted(truck_resources(), key=lambda e: not e[0].startswith("points/"))

    def one(entry):
        path, resource = entry
        return fetch_resource(resource, cache_dir=root / Path(path).parent, **fetch_kwargs)

    one(entries[0])
    with ThreadPoolExecutor(max(1, int(workers))) as pool:
        list(pool.map(one, entries[1:]))
    print(f"truck scene: {len(entries)} files, each checked against its pin, from {entries[0][1].urls[0].rsplit('/', 2)[0]}/ "
          f"or the cache, in {root}")
    return root


# ---------------------------------------------------- SRN cars (notebook 06, Splatter Image full mode)
# PixelNeRF's copy of the SRN cars renderings (srn_cars.zip on the PixelNeRF authors' Google Drive:
# srn_cars/cars_{train,val,test}/<object>/{rgb,pose,intrinsics.txt}; reader: lib.data.srn). Not pinned
# (sha256 None): Drive was unreachable from the machine this entry was written on. Fetch once with
# allow_unverified=True, check the data loads, then pin sha256sum(path) and the size here.
SOURCES["srn_cars"] = Resource(
    "srn_cars.zip", sha256=None, extract=True, urls=["gdrive://19yDsEJjx9zNpOKz9o6AaK-E8ED6taJWU"],
    description="SRN cars (PixelNeRF's copy): 128x128 renders, poses, intrinsics; cars_train/val/test",
    manual=("srn_cars.zip is in PixelNeRF's data folder on Google Drive (file id "
            "19yDsEJjx9zNpOKz9o6AaK-E8ED6taJWU, linked from https://github.com/sxyu/pixel-nerf). When "
            "Drive's quota refuses gdown, download it in a browser, put it in the cache folder, and "
            "fetch extracts it."))


def fetch_srn_cars(**fetch_kwargs) -> Path:
    """Fetch and extract srn_cars.zip; return the folder holding ``cars_train/``, ``cars_val/``,
    ``cars_test/`` (the ``root`` of :func:`lib.data.srn.load_srn_split`, splits named "cars_train", ...).
    Keyword arguments go to :func:`lib.data.download.fetch_resource` (``allow_unverified=True``
    until the sha256 is pinned)."""
    root = fetch("srn_cars", **fetch_kwargs)
    for candidate in (root / "srn_cars", root):
        if (candidate / "cars_train").is_dir():
            return candidate
    raise FileNotFoundError(f"no cars_train/ folder under {root}; is the archive complete?")


# ------------------------------------------------------ point clouds (notebook 08, full mode)
# The 16-825 course's point-cloud assignment data (assignment 5: cls/ and seg/ .npy files; reader:
# lib.data.point_clouds), as the course publishes it on Hugging Face. Not pinned (sha256 None): the
# host was unreachable from the machine this entry was written on and no published checksum was
# found. Fetch once on Colab with allow_unverified=True, check that load_point_task reads both tasks,
# then paste lib.data.download.sha256sum(path) and the size here.
SOURCES["a5_point_clouds"] = Resource(
    "a5_data.zip", sha256=None, extract=True,
    urls=["hf://datasets/learning3dvision/assignment5/a5_data.zip@main"],
    description="16-825 assignment 5 point clouds: cls (chair/vase/lamp) and seg (chairs, 6 parts), "
                "10000 points per shape",
    manual=("a5_data.zip (about 1.3 GB) is in the Hugging Face dataset "
            "https://huggingface.co/datasets/learning3dvision/assignment5 (Files tab, or git clone it "
            "with git-lfs). Put the zip in the cache folder and fetch extracts it, or unzip it yourself "
            "and pass the folder holding cls/ and seg/ to lib.data.point_clouds.load_point_task."))


def fetch_a5_point_clouds(**fetch_kwargs) -> Path:
    """Fetch and extract a5_data.zip; return the folder holding ``cls/`` and ``seg/`` (the ``root`` of
    :func:`lib.data.point_clouds.load_point_task`). Keyword arguments go to
    :func:`lib.data.download.fetch_resource` (``allow_unverified=True`` until the sha256 is pinned)."""
    from lib.data.point_clouds import find_point_data_root

    return find_point_data_root(fetch("a5_point_clouds", **fetch_kwargs))
