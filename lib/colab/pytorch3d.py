"""Getting PyTorch3D into a Colab runtime: pick the route from the runtime's versions, then install.

PyTorch3D's compiled extension must match torch exactly, so a pure function,
``choose_pytorch3d_route``, picks the route from the runtime's versions::

    installed  ``import pytorch3d._C`` already works              -> use it
    prebuilt   a wheel in ``PREBUILT_WHEELS`` matches the runtime  -> pip install it (seconds)
    community  a CUDA runtime: try the third-party wheel index     -> pip install it (seconds);
               ``COMMUNITY_INDEX`` for exactly this torch + CUDA      no matching wheel: go on
    cached     a wheel built earlier for exactly this runtime     -> pip install it (seconds)
    build      otherwise: build from source once, keep the wheel  -> ~20-40 min, then cached

``ensure_pytorch3d`` follows it (``lib.colab.setup(pytorch3d=True)`` calls it). Every subprocess
goes through a ``runner(cmd, env=None)`` (default ``lib.colab.runner.run_command``) that tests fake.

Example:
    >>> info = RuntimeInfo(python="3.12", torch="2.12.1+cu130", cuda="13.0")
    >>> choose_pytorch3d_route(info, []).kind
    'prebuilt'
    >>> colab_like = RuntimeInfo(python="3.12", torch="2.9.0+cu126", cuda="12.6")
    >>> choose_pytorch3d_route(colab_like, []).target
    'pytorch3d==0.7.9+pt2.9.0cu126'
    >>> cache_key(colab_like)
    'py312-torch2.9.0-cu126'
"""
from __future__ import annotations

import importlib
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from lib.colab.runner import GITHUB_REPO, Runner, check_returncode, run_command, run_pip, timed

DRIVE_MOUNT = "/content/drive"  # where google.colab.drive.mount puts the user's Drive
DRIVE_CACHE_DIR = "/content/drive/MyDrive/course3d-cache/pytorch3d"  # survives runtime resets
LOCAL_CACHE_DIR = "/content/course3d-cache/pytorch3d"  # fallback: lasts one runtime only
PYTORCH3D_SOURCE = "git+https://github.com/facebookresearch/pytorch3d.git@v0.7.9"
# Building from source on Colab (2 CPUs) is slow: pytorch3d issue #1871 (2024-09) reports
# "around 25 minutes" per install on Colab with torch 2.4.0+cu121, and #1767 a build that ran
# over 17 minutes before failing. Hence: build once, keep the wheel on Drive.
BUILD_MINUTES = "20-40"
# One GPU arch plus PTX: SASS for the T4 (sm_75), PTX that newer GPUs (L4, A100, H100) JIT-compile
# once. Building every arch would multiply the build time; a bare "7.5" would break on an A100.
BUILD_CUDA_ARCHS = "7.5+PTX"
# A community-maintained (third-party, not Meta's) index of PyTorch3D wheels for many torch/CUDA
# pairs, announced in PyTorch3D's GitHub discussion #1752; its versions read
# "0.7.9+pt<torch>cu<cuda>", e.g. 0.7.9+pt2.8.0cu128, 0.7.9+pt2.9.1cu130. Whether a pair exists is
# only known by asking pip, so the route tries it and goes on when pip finds no match.
COMMUNITY_INDEX = "https://miropsota.github.io/torch_packages_builder"
COMMUNITY_VERSION = "0.7.9"


@dataclass(frozen=True)
class PrebuiltWheel:
    """A published PyTorch3D wheel and the runtimes it works in."""

    requirement: str  # what to give pip install, e.g. "easypytorch3d==0.7.9.post1"
    pythons: tuple[str, ...]  # Python versions with a wheel, e.g. ("3.12",)
    torch: str  # torch series it was built against: "2.12" matches 2.12.0, 2.12.1+cu130, ...
    cuda: tuple[str, ...]  # torch.version.cuda values it links against, e.g. ("13.0",)
    note: str = ""  # where it comes from and what was checked


# Known prebuilt wheels, checked in order. Add a row when a new one is published and verified.
PREBUILT_WHEELS: tuple[PrebuiltWheel, ...] = (
    PrebuiltWheel(
        requirement="easypytorch3d==0.7.9.post1",
        pythons=("3.10", "3.11", "3.12", "3.13"),
        torch="2.12",
        cuda=("13.0",),
        note="PyPI, manylinux_2_28_x86_64; _C links libcudart.so.13, libtorch_cuda.so (so not a "
        "CPU-only torch); nvcc 13.0.88, sm_75..sm_120; Requires-Dist: iopath only (no torch pin).",
    ),
)


@dataclass(frozen=True)
class RuntimeInfo:
    """The versions that decide which PyTorch3D build can work."""

    python: str  # "3.12" (major.minor)
    torch: str  # torch.__version__, e.g. "2.9.0+cu126"
    cuda: str | None = None  # torch.version.cuda (torch's build, not the driver); None: CPU-only
    pytorch3d: str | None = None  # pytorch3d.__version__ if `import pytorch3d._C` works, else None
    error: str = ""  # why that import failed ("" when it worked or was not tried)

    @property
    def pytorch3d_ok(self) -> bool:
        """Whether PyTorch3D, compiled extension included, imports in this runtime."""
        return self.pytorch3d is not None


@dataclass(frozen=True)
class Route:
    """How ``ensure_pytorch3d`` gets PyTorch3D."""

    kind: str  # "installed", "prebuilt", "community", "cached" or "build"
    key: str  # cache_key of the runtime, e.g. "py312-torch2.9.0-cu126"
    target: str  # installed version | pip requirement (prebuilt, community) | wheel path | source URL
    reason: str  # one sentence for the student


def cache_key(info: RuntimeInfo) -> str:
    """Folder name for wheels built in this runtime: ``py312-torch2.9.0-cu126`` (``-cpu`` without CUDA)."""
    torch_base = info.torch.split("+")[0]
    cuda = f"cu{info.cuda.replace('.', '')}" if info.cuda else "cpu"
    return f"py{info.python.replace('.', '')}-torch{torch_base}-{cuda}"


def community_requirement(info: RuntimeInfo) -> str | None:
    """The requirement naming the ``COMMUNITY_INDEX`` wheel for this torch and CUDA (None on CPU).

    Example:
        >>> community_requirement(RuntimeInfo(python="3.12", torch="2.8.0+cu128", cuda="12.8"))
        'pytorch3d==0.7.9+pt2.8.0cu128'
    """
    if not info.cuda:
        return None
    return f"pytorch3d=={COMMUNITY_VERSION}+pt{info.torch.split('+')[0]}cu{info.cuda.replace('.', '')}"


def choose_pytorch3d_route(info: RuntimeInfo, cached_wheels: Sequence[str | Path],
                           prebuilt: Sequence[PrebuiltWheel] = PREBUILT_WHEELS,
                           community: bool = True) -> Route:
    """Decide how to get PyTorch3D for a runtime (pure: no imports, files or network).

    Args:
        info: the runtime's versions.
        cached_wheels: paths of wheels in the cache, laid out ``<cache>/<cache_key>/pytorch3d-*.whl``;
            only those under this runtime's key count.
        prebuilt: the table of known published wheels.
        community: whether the ``COMMUNITY_INDEX`` route may be tried (False once it found no wheel).

    Returns:
        The first route that applies, in the order installed, prebuilt, community, cached, build.
    """
    key, torch_base = cache_key(info), info.torch.split("+")[0]
    if info.pytorch3d_ok:
        return Route("installed", key, info.pytorch3d, f"pytorch3d {info.pytorch3d} already imports")
    for wheel in prebuilt:  # same Python, same torch series (2.12 matches 2.12.1), same CUDA
        if (info.python in wheel.pythons and info.cuda in wheel.cuda
                and (torch_base + ".").startswith(wheel.torch + ".")):
            return Route("prebuilt", key, wheel.requirement,
                         f"{wheel.requirement} is built for Python {info.python}, torch {info.torch}")
    requirement = community_requirement(info)
    if community and requirement:
        return Route("community", key, requirement,
                     f"trying the third-party wheel index {COMMUNITY_INDEX} for torch {info.torch}")
    mine = sorted(str(p) for p in cached_wheels
                  if Path(p).parent.name == key and Path(p).name.startswith("pytorch3d-")
                  and str(p).endswith(".whl"))
    if mine:
        return Route("cached", key, mine[-1], f"a wheel built earlier for {key} is in the cache")
    return Route("build", key, PYTORCH3D_SOURCE, f"no prebuilt or cached wheel for {key}")


_PROBE = """\
import json, sys
info = {"python": "%d.%d" % sys.version_info[:2], "torch": "", "cuda": None, "pytorch3d": None, "error": ""}
try:
    import torch
    info["torch"], info["cuda"] = torch.__version__, torch.version.cuda
    import pytorch3d, pytorch3d._C
    info["pytorch3d"] = pytorch3d.__version__
except Exception as e:
    info["error"] = "%s: %s" % (type(e).__name__, e)
print(json.dumps(info))
"""


def probe_runtime(runner: Runner | None = None) -> RuntimeInfo:
    """Read Python/torch/CUDA versions and try ``import pytorch3d._C`` in a fresh subprocess.

    A subprocess sees packages installed after this kernel started and cannot be spoiled by an
    earlier failed import here.
    """
    proc = (runner or run_command)([sys.executable, "-c", _PROBE], env=None)
    check_returncode(proc, "probing the Python/torch versions")
    lines = [ln for ln in (proc.stdout or "").splitlines() if ln.startswith("{")]
    if not lines:
        raise RuntimeError(f"the version probe printed no JSON:\n{proc.stdout}")
    info = RuntimeInfo(**json.loads(lines[-1]))
    if not info.torch:
        raise RuntimeError(f"torch does not import in this runtime ({info.error}); "
                           "on Colab use a standard runtime, locally pip install -r requirements.txt.")
    return info


def resolve_wheel_cache(cache_dir: str | Path, use_drive: bool,
                      mount: Callable[[str], None] | None = None,
                      local_cache_dir: str | Path = LOCAL_CACHE_DIR) -> Path:
    """The wheel cache folder: on Drive when asked and possible, else ``local_cache_dir``.

    Drive is mounted (``mount(DRIVE_MOUNT)``, default ``google.colab.drive.mount``) only when
    ``cache_dir`` lies under ``DRIVE_MOUNT``, ``use_drive`` is set and it is not mounted yet.
    """
    cache_dir, local = Path(cache_dir), Path(local_cache_dir)
    on_drive = DRIVE_MOUNT in (str(cache_dir), *map(str, cache_dir.parents))
    if on_drive and not use_drive:
        cache_dir, on_drive = local, False
    try:
        if on_drive and not (Path(DRIVE_MOUNT) / "MyDrive").is_dir():
            if mount is None:
                from google.colab import drive  # only importable on Colab
                mount = drive.mount
            timed("mounting Google Drive (to keep the built wheel)", lambda: mount(DRIVE_MOUNT))
        cache_dir.mkdir(parents=True, exist_ok=True)
    except Exception as e:  # not on Colab, authorisation refused, Drive full or read-only...
        print(f"  Drive unavailable ({type(e).__name__}: {e}); using {local}, which lasts this runtime only.")
        cache_dir = local
        cache_dir.mkdir(parents=True, exist_ok=True)
    return cache_dir


def ensure_pytorch3d(cache_dir: str | Path = DRIVE_CACHE_DIR, use_drive: bool = True,
                     runner: Runner | None = None, quiet: bool = True,
                     mount: Callable[[str], None] | None = None,
                     local_cache_dir: str | Path = LOCAL_CACHE_DIR) -> Route:
    """Make ``import pytorch3d`` work in this runtime, by the route ``choose_pytorch3d_route`` picks.

    Prints each step and its duration. The cache (and so Drive) is only touched when no installed,
    prebuilt or third-party (``COMMUNITY_INDEX``) PyTorch3D fits.

    Args:
        cache_dir: where built wheels are kept, one subfolder per ``cache_key``.
        use_drive: allow mounting Google Drive when ``cache_dir`` is on it.
        runner: ``runner(cmd, env=None) -> CompletedProcess``; default ``run_command``.
        quiet: hide pip's output unless something fails.
        mount: Drive mounting function (tests pass a fake); default ``google.colab.drive.mount``.
        local_cache_dir: the cache used when Drive is off or unavailable.

    Returns:
        The route taken.

    Raises:
        RuntimeError: a step failed, or PyTorch3D still does not import afterwards.
    """
    runner = runner or (lambda cmd, env=None: run_command(cmd, env, echo=not quiet))
    q = ["-q"] if quiet else []
    info = probe_runtime(runner)
    route = choose_pytorch3d_route(info, [])
    if route.kind == "community":
        if _install_community(route, info, runner, q):
            return route
        route = choose_pytorch3d_route(info, [], community=False)
    if route.kind == "build":  # only now is the cache worth a look (and a Drive mount)
        cache = resolve_wheel_cache(cache_dir, use_drive, mount, local_cache_dir)
        route = choose_pytorch3d_route(info, sorted(map(str, (cache / route.key).glob("*.whl"))),
                                       community=False)
    print(f"PyTorch3D: {route.kind} ({route.reason}; python {info.python}, torch {info.torch}, "
          f"CUDA {info.cuda or 'none'})")
    if route.kind == "installed":
        return route
    if route.kind in ("prebuilt", "cached"):
        run_pip(runner, f"pip install {Path(route.target).name}", ["install", *q, route.target])
    else:
        out = cache / route.key
        print(f"  Building PyTorch3D from source: roughly {BUILD_MINUTES} minutes on Colab's 2 CPUs, "
              f"once; the wheel is kept in {out}, so later sessions take seconds.")
        archs = os.environ.get("TORCH_CUDA_ARCH_LIST", BUILD_CUDA_ARCHS)
        env = {"FORCE_CUDA": "1", "TORCH_CUDA_ARCH_LIST": archs} if info.cuda else {}
        run_pip(runner, "pip install ninja (parallel compiles)", ["install", *q, "ninja"])
        # --no-build-isolation: compile against the torch installed here, not a fresh one.
        run_pip(runner, "pip wheel pytorch3d (the long step)",
             ["wheel", *q, "--no-deps", "--no-build-isolation", "-w", str(out), route.target], env)
        wheels = sorted(out.glob("pytorch3d-*.whl"))
        if not wheels:
            raise RuntimeError(f"building PyTorch3D left no pytorch3d-*.whl in {out}")
        run_pip(runner, f"pip install {wheels[-1].name}", ["install", *q, str(wheels[-1])])
    importlib.invalidate_caches()
    after = probe_runtime(runner)
    if not after.pytorch3d_ok:
        raise RuntimeError(
            f"PyTorch3D still does not import after the {route.kind} route ({route.target}): {after.error}\n"
            f"Runtime: python {after.python}, torch {after.torch}, CUDA {after.cuda or 'none'}.\n"
            "Try Runtime > Restart session and run the notebook again. If it fails again, delete "
            f"the folder {route.key} in the wheel cache to force a rebuild, or open an issue at "
            f"https://github.com/{GITHUB_REPO}/issues with this message.")
    print(f"  pytorch3d {after.pytorch3d} imports.")
    return route


def _install_community(route: Route, info: RuntimeInfo, runner: Runner, q: list[str]) -> bool:
    """Try the ``COMMUNITY_INDEX`` wheel; True when PyTorch3D then imports, else undo and say why.

    ``torch==<installed>`` goes in the same pip call, so pip never swaps Colab's torch for the
    one a wheel might ask for: such a wheel counts as no match.
    """
    print(f"PyTorch3D: trying {route.target} from {COMMUNITY_INDEX}, a third-party build (made by "
          "a community project, not by the PyTorch3D team; see PyTorch3D discussion #1752) for "
          f"python {info.python}, torch {info.torch}, CUDA {info.cuda}")
    cmd = [sys.executable, "-m", "pip", "install", *q, "--extra-index-url", COMMUNITY_INDEX,
           route.target, f"torch=={info.torch}"]
    proc = timed(f"pip install {route.target}", lambda: runner(cmd, env=None))
    if proc.returncode != 0:
        out = proc.stdout or ""
        tail = (out.strip().splitlines() or ["(no output)"])[-1]
        if "No matching distribution" in out or "Could not find a version" in out:
            print(f"  no third-party wheel matches {route.target}; going on without it.")
        else:
            print(f"  the third-party wheel did not install ({tail}); going on without it.")
        return False
    importlib.invalidate_caches()
    after = probe_runtime(runner)
    if after.pytorch3d_ok:
        print(f"  pytorch3d {after.pytorch3d} imports (third-party wheel {route.target}).")
        return True
    print(f"  the third-party wheel {route.target} installed but does not import ({after.error}); "
          "uninstalling it and going on without it.")
    check_returncode(runner([sys.executable, "-m", "pip", "uninstall", "-y", "pytorch3d"], env=None),
           "pip uninstall pytorch3d")
    return False
