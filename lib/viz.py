"""Pictures: turntables, image grids (matplotlib), GIF/MP4 writers (imageio), interactive 3D (plotly).

Images are (H, W, 3) or (N, H, W, 3) float in [0, 1] (torch or numpy) or uint8 arrays.

Example:
    >>> frames = torch.rand(4, 16, 16, 3)
    >>> save_gif(frames, "/tmp/demo.gif", fps=8).name
    'demo.gif'
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence, Union

import numpy as np
import torch

from lib.cameras import orbit_poses
from lib.checks import shape_of
from lib.fileio import atomic_write
from lib.images import to_uint8


def _check_frames(frames) -> np.ndarray:
    arr = to_uint8(frames)
    if arr.ndim != 4 or arr.shape[-1] not in (3, 4) or arr.shape[0] == 0:
        raise ValueError(f"frames must be (N, H, W, 3) with N >= 1, got shape {arr.shape}")
    return arr


def save_gif(frames, path, fps: float = 12) -> Path:
    """Write (N, H, W, 3) frames as a looping GIF at ``fps`` frames per second."""
    import imageio.v3 as iio

    arr = _check_frames(frames)
    return atomic_write(path, lambda p: iio.imwrite(p, arr, extension=".gif", duration=1000 / fps, loop=0))


def save_mp4(frames, path, fps: float = 24) -> Path:
    """Write (N, H, W, 3) frames as an H.264 MP4 (sizes padded to a multiple of 16 by ffmpeg)."""
    import imageio.v2 as iio2

    arr = _check_frames(frames)[..., :3]

    def write(p):
        with iio2.get_writer(p, format="FFMPEG", fps=fps, codec="libx264", quality=7,
                             macro_block_size=16, ffmpeg_log_level="error") as w:
            for frame in arr:
                w.append_data(frame)

    return atomic_write(path, write)


def save_video(frames, path, fps: float = 12) -> Path:
    """Write (N, H, W, 3) frames as a GIF or an MP4, chosen by the suffix of ``path``."""
    suffix = Path(path).suffix.lower()
    if suffix not in (".gif", ".mp4"):
        raise ValueError(f"save_video: `path` must end in .gif or .mp4, got {str(path)!r}")
    return (save_gif if suffix == ".gif" else save_mp4)(frames, path, fps)


Render = Callable[[torch.Tensor], torch.Tensor]


def turntable(render: Union[Render, Sequence[Render]], n_frames: int = 24, elevation: float = 20.0,
              distance: float = 3.0, target=(0.0, 0.0, 0.0), batched: bool = False, device=None,
              path=None, seconds: float = 4.0):
    """Frames of a camera circling ``target`` once, rendered by ``render``; optionally written.

    The cameras are ``lib.cameras.orbit_poses(n_frames, elevation, distance, target)``: azimuths
    0, 360/n, ... degrees at a fixed elevation (degrees) and distance (world units), looking at
    ``target``.

    Args:
        render: maps one (4, 4) c2w pose to an (H, W, C) image (C = 3 or 4, float in [0, 1]), or,
            with ``batched=True``, all (n_frames, 4, 4) poses at once to (n_frames, H, W, C)
            (renderers that take a batch of cameras, e.g. ``lib.render.render_mesh``). A list
            of such callables renders each and puts their frames side by side (same height).
            A single callable may also return a dict of tensors (e.g. ``rgb``, ``depth`` and
            ``opacity`` of ``lib.render.volume.render_image``): each entry is stacked per frame,
            and ``path`` gets the ``"rgb"`` entry.
        n_frames, elevation, distance, target: the orbit.
        batched: see ``render``.
        device: where the poses are put before ``render`` sees them (None: CPU).
        path: optional ``.gif`` or ``.mp4`` file to write the frames to (:func:`save_video`).
        seconds: the clip's length when written: ``fps = n_frames / seconds``.
    Returns:
        (n_frames, H, W, C) float32 frames on the CPU (detached), or for a dict-valued ``render``
        a dict of (n_frames, ...) CPU tensors.

    Example:
        >>> frames = turntable(lambda c2w: torch.full((8, 8, 3), float(c2w[2, 3] > 1)), n_frames=4)
        >>> frames.shape, frames[:, 0, 0, 0].tolist()  # camera at z = 3 for azimuth 0, z ~ 0 or -3 after
        (torch.Size([4, 8, 8, 3]), [1.0, 0.0, 0.0, 0.0])
    """
    renders = list(render) if isinstance(render, (list, tuple)) else [render]
    if not renders or not all(callable(r) for r in renders):
        raise ValueError(f"turntable: `render` must be a callable or a list of callables, got {render!r}")
    if int(n_frames) < 1:
        raise ValueError(f"turntable: n_frames must be >= 1, got {n_frames}")
    poses = orbit_poses(int(n_frames), elevation, distance, target)
    if device is not None:
        poses = poses.to(device)
    clips = [_render_clip(r, poses, batched) for r in renders]
    if isinstance(clips[0], dict):
        if len(clips) > 1:
            raise ValueError("turntable: renders that return dicts cannot be put side by side; pass one")
        if path is not None:
            save_video(clips[0]["rgb"], path, fps=n_frames / seconds)
        return clips[0]
    if len({c.shape[1] for c in clips}) > 1:
        raise ValueError(f"turntable: side-by-side renders need one height, got {[c.shape[1] for c in clips]}")
    frames = torch.cat(clips, dim=2)
    if path is not None:
        save_video(frames, path, fps=n_frames / seconds)
    return frames


def _render_clip(render: Render, poses: torch.Tensor, batched: bool):
    """(N, H, W, C) CPU frames (or a dict of (N, ...) tensors) of one render callable."""
    outs = [render(poses)] if batched else [render(c2w) for c2w in poses]
    if isinstance(outs[0], dict):
        if batched:
            return {k: v.detach().cpu() for k, v in outs[0].items()}
        return {k: torch.stack([o[k] for o in outs]).detach().cpu() for k in outs[0]}
    out = outs[0] if batched else torch.stack([torch.as_tensor(o) for o in outs])
    if not torch.is_tensor(out) or out.ndim != 4 or out.shape[0] != len(poses):
        got = shape_of(out)
        raise ValueError(f"turntable: `render` must give an (H, W, C) image per pose (or (N, H, W, C) "
                         f"with batched=True, N = {len(poses)}), got {got}")
    return out.detach().float().cpu()


def save_image(image, path) -> Path:
    """Write one (H, W, 3) image as PNG."""
    import imageio.v3 as iio

    arr = to_uint8(image)
    return atomic_write(path, lambda p: iio.imwrite(p, arr, extension=".png"))


def on_surface(values, coverage, min_coverage: float = 0.5) -> torch.Tensor:
    """A depth or distance map ready to show, or to lift to points: NaN unless more than
    ``min_coverage`` of the pixel is covered (:func:`image_grid` leaves those blank, so the background
    does not read as "nearest" and the colour bar spans the object's values). ``coverage``: a bool
    mask, or the renderer's opacity/alpha (then an expected distance ``sum w t`` is divided by it: the
    mean over what the ray hit, not shrunk towards 0 by the empty part). Same shape as ``values`` (a
    trailing 1 dropped), on the CPU.

    >>> on_surface(torch.tensor([[2.0, 1.5, 0.0]]), torch.tensor([[1.0, 0.75, 0.0]])).tolist()
    [[2.0, 2.0, nan]]
    """
    values = torch.as_tensor(values).detach().float().cpu()
    coverage = torch.as_tensor(coverage).detach().cpu()
    values = values[..., 0] if values.shape[-1:] == (1,) and values.ndim > 2 else values
    coverage = coverage[..., 0] if coverage.shape[-1:] == (1,) and coverage.ndim > 2 else coverage
    if values.shape != coverage.shape:
        raise ValueError(f"on_surface: `values` {tuple(values.shape)} and `coverage` {tuple(coverage.shape)} "
                         "must be the same map")
    if coverage.dtype == torch.bool:
        return torch.where(coverage, values, torch.tensor(float("nan")))
    return torch.where(coverage > min_coverage, values / coverage.float().clamp_min(1e-6), torch.tensor(float("nan")))


def colour_map(values, lo: float = None, hi: float = None, cmap: str = "viridis") -> torch.Tensor:
    """(..., H, W) values -> (..., H, W, 3) float RGB in [0, 1] through a matplotlib colour map, for
    frames of a video (a still figure gets its colour bar from :func:`image_grid` instead). ``lo``,
    ``hi``: the range mapped to the colour map's ends (default: the finite values' min and max); NaN
    (off the surface, :func:`on_surface`) is white."""
    import matplotlib

    v = torch.as_tensor(values).detach().float().cpu()
    finite = v[torch.isfinite(v)]
    lo = float(finite.min()) if lo is None and finite.numel() else (0.0 if lo is None else lo)
    hi = float(finite.max()) if hi is None and finite.numel() else (1.0 if hi is None else hi)
    scaled = ((v - lo) / max(hi - lo, 1e-12)).clamp(0, 1)
    rgb = torch.from_numpy(matplotlib.colormaps[cmap](scaled.nan_to_num(0.0).numpy())[..., :3]).float()
    return torch.where(torch.isnan(v)[..., None], torch.ones(3), rgb)


def image_grid(images, titles=None, ncols: int = None, size: float = 2.2, suptitle: str = None,
               vmax: float = None):
    """Show images side by side; returns the matplotlib Figure.

    Args:
        images: sequence or (N, H, W, 3) batch; 2-D entries (depth, distance, errors) are shown with a
            colour map and its colour bar, so that their values can be read; 2-D bool masks in black
            and white (white: True).
        titles: optional N strings. ncols: columns (default: all in one row, at most 6).
        vmax: one colour scale [0, vmax] for every 2-D entry (maps to be compared); None: each its own.
    """
    import matplotlib.pyplot as plt

    images = list(images)
    n = len(images)
    ncols = ncols or min(n, 6)
    nrows = (n + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= n:
            continue
        img = images[i].detach().cpu().numpy() if torch.is_tensor(images[i]) else np.asarray(images[i])
        if img.ndim == 2 and img.dtype == bool:  # a mask: black and white, no colour bar to read
            ax.imshow(img, cmap="gray", vmin=0, vmax=1)
        elif img.ndim == 2:
            shown = ax.imshow(img, cmap="viridis", vmin=0.0 if vmax is not None else None, vmax=vmax)
            fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.04)
        else:
            ax.imshow(img)
        if titles is not None:
            ax.set_title(titles[i], fontsize=9)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


LABEL_COLORS = np.array([[0.90, 0.90, 0.90], [0.85, 0.20, 0.20], [0.20, 0.60, 0.85], [0.95, 0.70, 0.10],
                         [0.45, 0.75, 0.30], [0.60, 0.35, 0.75], [0.35, 0.35, 0.35], [0.95, 0.50, 0.70]])


def label_colors(labels) -> np.ndarray:
    """(..., 3) float colours in [0, 1] for integer labels (part or class), from the fixed
    :data:`LABEL_COLORS` palette (label 0 light grey, 1 red, 2 blue, 3 yellow, 4 green, 5 purple...)."""
    lab = np.asarray(labels.cpu() if torch.is_tensor(labels) else labels).astype(np.int64)
    if lab.size and (lab.min() < 0 or lab.max() >= len(LABEL_COLORS)):
        raise ValueError(f"label_colors: labels must be in [0, {len(LABEL_COLORS) - 1}], got {lab.min()}..{lab.max()}")
    return LABEL_COLORS[lab]


def plot_axes(points) -> tuple:
    """World (P, 3) points as the (X, Y, Z) arrays a 3D plot draws: ``(x, -z, y)``.

    lib's world is right-handed with y up; matplotlib and plotly draw a right-handed (X, Y, Z) with Z
    up. Drawing (x, z, y) would swap two axes, a reflection (every shape a mirror image); (x, -z, y)
    is a rotation by 90 degrees about x, so shapes keep their handedness.

    >>> X, Y, Z = plot_axes(np.eye(3))  # the world's x, y and z axes
    >>> bool(np.linalg.det(np.stack([X, Y, Z])) > 0), [float(X[1]), float(Y[1]), float(Z[1])]  # y drawn up
    (True, [0.0, 0.0, 1.0])
    """
    p = np.asarray(points.detach().cpu() if torch.is_tensor(points) else points, dtype=np.float64)
    return p[:, 0], -p[:, 2] + 0.0, p[:, 1]


def point_cloud_grid(clouds, colors=None, titles=None, ncols: int = None, size: float = 2.4,
                     point_size: float = 1.0, elev: float = 20.0, azim: float = -35.0, suptitle: str = None):
    """Static 3D scatter plots of several (P, 3) clouds side by side (matplotlib; y is drawn up, see
    :func:`plot_axes`); returns the Figure. colors: optional per-cloud (P, 3) in [0, 1] (None entries:
    one plain colour); titles: optional strings. The default view (azim -35) looks from the front
    right (+x, +z), above (elev 20)."""
    import matplotlib.pyplot as plt

    clouds = [np.asarray(c.detach().cpu() if torch.is_tensor(c) else c) for c in clouds]
    n = len(clouds)
    ncols = ncols or min(n, 6)
    nrows = (n + ncols - 1) // ncols
    fig = plt.figure(figsize=(size * ncols, size * nrows))
    for i, p in enumerate(clouds):
        ax = fig.add_subplot(nrows, ncols, i + 1, projection="3d")
        c = None if colors is None or colors[i] is None else colors[i]
        c = np.asarray(c.cpu() if torch.is_tensor(c) else c) if c is not None else "tab:blue"
        ax.scatter(*plot_axes(p), c=c, s=point_size, depthshade=False)
        r = float(np.abs(p).max()) or 1.0
        ax.set_xlim(-r, r)
        ax.set_ylim(-r, r)
        ax.set_zlim(-r, r)
        ax.view_init(elev=elev, azim=azim)
        ax.set_axis_off()
        if titles is not None:
            ax.set_title(titles[i], fontsize=9)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


# plotly's 3D scene for world points drawn by plot_axes: equal axes, named by the world axis each one
# shows, first seen from the front right (+x, +z) and above, as point_cloud_grid's default view
PLOTLY_SCENE = {"aspectmode": "data", "xaxis_title": "x", "yaxis_title": "-z", "zaxis_title": "y (up)",
                "camera": {"eye": {"x": 1.25, "y": -1.25, "z": 1.25}}}


def plotly_points(points, colors=None, size: float = 2.0, title: str = None):
    """An interactive plotly 3D scatter of (P, 3) points with (P, 3) colours in [0, 1]."""
    import plotly.graph_objects as go

    X, Y, Z = plot_axes(points)
    marker = {"size": size}
    if colors is not None:
        c = to_uint8(colors)
        marker["color"] = [f"rgb({r},{g},{b})" for r, g, b in c[:, :3]]
    fig = go.Figure(go.Scatter3d(x=X, y=Y, z=Z, mode="markers", marker=marker))
    fig.update_layout(title=title, scene=PLOTLY_SCENE, margin={"l": 0, "r": 0, "t": 30, "b": 0})
    return fig


def plotly_mesh(mesh, title: str = None):
    """An interactive plotly 3D view of a ``TriMesh`` (vertex colours when it has them)."""
    import plotly.graph_objects as go

    X, Y, Z = plot_axes(mesh.verts)
    f = mesh.faces.cpu().numpy()
    kwargs = {}
    if mesh.vert_colors is not None:
        c = to_uint8(mesh.vert_colors)
        kwargs["vertexcolor"] = [f"rgb({r},{g},{b})" for r, g, b in c]
    fig = go.Figure(go.Mesh3d(x=X, y=Y, z=Z, i=f[:, 0], j=f[:, 1], k=f[:, 2], **kwargs))
    fig.update_layout(title=title, scene=PLOTLY_SCENE, margin={"l": 0, "r": 0, "t": 30, "b": 0})
    return fig


def png_bytes(image) -> bytes:
    """Encode one (H, W, 3) image as PNG bytes (for ``ipywidgets.Image``)."""
    import imageio.v3 as iio

    return iio.imwrite("<bytes>", to_uint8(image), extension=".png")


def show_gif(path):
    """Display a GIF written by :func:`save_gif` inline in a notebook (an ``IPython.display.Image``)."""
    from IPython.display import Image

    return Image(filename=str(path))
