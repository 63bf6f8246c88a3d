"""Differentiable colour rendering of a fixed mesh in pure torch (no PyTorch3D): per-vertex colours
or a texture image, fitted through rendered views (e.g. score distillation on a mesh texture).

Visibility comes from the z-buffer of :func:`lib.render.zbuffer.rasterize`, run under
``torch.no_grad`` on the detached vertices: which face each pixel sees and the perspective-correct
barycentric weights of its three corners are constants here (no gradient w.r.t. ``verts``, none
across silhouettes). Colours are then mixed with those weights, so the image is *linear* in the
vertex colours or texel colours and differentiable w.r.t. them:

- :func:`render_vertex_colors`: ``rgb[pixel] = sum_k bary_k * colors[faces[face, k]]``.
- :func:`render_texture`: the texture coordinate ``uv = sum_k bary_k * uv_k`` is interpolated the
  same way, then the texture is sampled bilinearly there
  (``torch.nn.functional.grid_sample``, ``align_corners=False``, border padding).

UV convention (the one of ``lib.mesh.TriMesh`` and OBJ files, ``lib.data.mesh_io``): u runs left to
right, **v runs bottom to top**; texture row 0 is the top of the image (v = 1) and column 0 the left
(u = 0). Texel (i, j) of an (Ht, Wt, C) texture has its centre at
``u = (j + 0.5) / Wt, v = 1 - (i + 0.5) / Ht``; the texture covers [0, 1]^2 edge to edge.

Optional shading: ``"headlight"`` multiplies each face's colour by the fixed (non-learnable) factor
``ambient + (1 - ambient) |n . view|`` of :func:`lib.render.zbuffer.render_views`.
Empty pixels get ``background``. Cameras follow ``lib.cameras`` (c2w, OpenCV axes, K in pixels).

Example (CPU)::

    >>> from lib import cameras, primitives
    >>> mesh = primitives.box(size=(0.6, 0.6, 0.6))
    >>> colors = torch.full((mesh.verts.shape[0], 3), 0.5, requires_grad=True)
    >>> out = render_vertex_colors(mesh.verts, mesh.faces, colors, cameras.orbit_poses(3, distance=2.0),
    ...                            cameras.intrinsics_from_fov(40.0, 32), 32)
    >>> out["rgb"].shape, out["mask"].shape, out["rgb"][0, 16, 16].tolist()
    (torch.Size([3, 32, 32, 3]), torch.Size([3, 32, 32]), [0.5, 0.5, 0.5])
    >>> out["rgb"].sum().backward(); colors.grad.shape
    torch.Size([24, 3])
"""
from __future__ import annotations

from typing import Optional

import torch

from lib.checks import shape_of
from lib.render.common import batch_cameras
from lib.render.zbuffer import face_facing, interpolate, rasterize

_SHADINGS = (None, "headlight")


def fragments(verts: torch.Tensor, faces: torch.Tensor, c2w: torch.Tensor, K: torch.Tensor, image_size,
              shading: Optional[str] = None, ambient: float = 0.45, cull_back_faces: bool = True) -> dict:
    """The constant part of a render: z-buffer fragments and the shading factor, without gradients.

    Args:
        verts: (V, 3) float world (detached here). faces: (F, 3) int64.
        c2w: (4, 4) or (N, 4, 4) camera-to-world. K: (3, 3) or (N, 3, 3) pixel intrinsics.
        image_size: H, or (H, W). shading: None (factor 1) or ``"headlight"``.
        ambient: in [0, 1], light every face gets under ``"headlight"``.
        cull_back_faces: see :func:`lib.render.zbuffer.rasterize`.
    Returns:
        dict of :func:`lib.render.zbuffer.rasterize` (``face`` (N, H, W) int64, -1 where empty;
        ``mask`` (N, H, W) bool; ``depth`` (N, H, W) camera z, 0 where empty; ``bary``
        (N, H, W, 3)), all detached, plus ``light`` (N, H, W, 1) the shading factor (1 where empty
        or with ``shading=None``), in the dtype of ``verts``.
    """
    if shading not in _SHADINGS:
        raise ValueError(f"`shading` must be one of {_SHADINGS}, got {shading!r}")
    if not 0.0 <= float(ambient) <= 1.0:
        raise ValueError(f"`ambient` must be in [0, 1], got {ambient}")
    if not torch.is_tensor(verts) or verts.ndim != 2 or verts.shape[1] != 3:
        raise ValueError(f"`verts` must be (V, 3), got {tuple(verts.shape) if torch.is_tensor(verts) else verts}")
    if not torch.is_tensor(faces) or faces.ndim != 2 or faces.shape[1] != 3:
        raise ValueError(f"`faces` must be (F, 3), got {tuple(faces.shape) if torch.is_tensor(faces) else faces}")
    with torch.no_grad():
        v, f = verts.detach(), faces.long()
        c2w, K = (x.to(v) for x in batch_cameras(c2w, K))
        frags = rasterize(v, f, c2w, K, image_size, cull_back_faces)
        light = torch.ones_like(frags["depth"])
        if shading == "headlight":
            lit = ambient + (1 - ambient) * face_facing(v, f, c2w).abs()  # (N, F)
            N = lit.shape[0]
            idx = frags["face"].clamp(min=0)
            light = torch.where(frags["mask"], torch.gather(lit, 1, idx.reshape(N, -1)).reshape(idx.shape), light)
        frags["light"] = light[..., None]
    return frags


def _finish(colour: torch.Tensor, frags: dict, background) -> dict:
    """Shade (N, H, W, C) pixel colours, put ``background`` where empty, pack the output dict."""
    bg = torch.as_tensor(background, dtype=colour.dtype, device=colour.device)
    if bg.ndim > 1 or (bg.ndim == 1 and bg.shape[0] not in (1, colour.shape[-1])):
        raise ValueError(f"`background` must be a float or ({colour.shape[-1]},), got {tuple(bg.shape)}")
    rgb = torch.where(frags["mask"][..., None], colour * frags["light"].to(colour.dtype), bg)
    return {"rgb": rgb, "mask": frags["mask"], "depth": frags["depth"], "face": frags["face"],
            "bary": frags["bary"]}


def render_vertex_colors(verts: torch.Tensor, faces: torch.Tensor, colors: torch.Tensor, c2w: torch.Tensor,
                         K: torch.Tensor, image_size, background=1.0, shading: Optional[str] = None,
                         ambient: float = 0.45, cull_back_faces: bool = True) -> dict:
    """Render per-vertex colours, mixed with the barycentric weights of the z-buffer fragments.

    ``rgb[n, y, x] = light * sum_k bary[n, y, x, k] * colors[faces[face[n, y, x], k]]`` inside the
    mesh, ``background`` elsewhere; linear in ``colors``, so d(sum rgb) / d colors[v] is the sum of
    the weights vertex v gets over all covered pixels (times ``light``).

    Args:
        verts: (V, 3) float world; no gradient flows to it. faces: (F, 3) int64.
        colors: (V, C) float (C = 3 for RGB), may require grad; not clamped.
        c2w: (4, 4) or (N, 4, 4) camera-to-world. K: (3, 3) or (N, 3, 3) pixel intrinsics.
        image_size: H, or (H, W) pixels.
        background: float or (C,) colour of empty pixels.
        shading: None (unlit colours) or ``"headlight"`` (fixed factor, see :func:`fragments`).
        ambient: in [0, 1], for ``"headlight"``. cull_back_faces: see ``rasterize``.
    Returns:
        dict with ``rgb`` (N, H, W, C) in the dtype of ``colors``, ``mask`` (N, H, W) bool,
        ``depth`` (N, H, W) camera z (0 where empty), and the detached fragments ``face``
        (N, H, W) int64 (-1 where empty) and ``bary`` (N, H, W, 3).
    """
    if not torch.is_tensor(colors) or colors.ndim != 2 or colors.shape[0] != verts.shape[0]:
        raise ValueError(f"`colors` must be (V, C) = ({verts.shape[0]}, C), got "
                         f"{shape_of(colors)}")
    frags = fragments(verts, faces, c2w, K, image_size, shading, ambient, cull_back_faces)
    colour = interpolate(colors, faces, frags["face"], frags["bary"].to(colors.dtype))
    return _finish(colour, frags, background)


def uv_to_grid(uv: torch.Tensor) -> torch.Tensor:
    """(..., 2) texture coordinates (u right, v up; [0, 1] spans the texture) -> (..., 2)
    ``grid_sample`` coordinates (x right, y down; [-1, 1] spans the texture, ``align_corners=False``)."""
    return torch.stack([2 * uv[..., 0] - 1, 1 - 2 * uv[..., 1]], -1)


def sample_texture(texture: torch.Tensor, uv: torch.Tensor) -> torch.Tensor:
    """Bilinear texture look-up at (..., 2) uv (module convention), differentiable w.r.t. ``texture``
    (and ``uv``); outside [0, 1] the border texels repeat.

    Args:
        texture: (Ht, Wt, C) float, row 0 at the top (v = 1). uv: (..., 2) float.
    Returns:
        (..., C) in the dtype of ``texture``.
    """
    if not torch.is_tensor(texture) or texture.ndim != 3:
        raise ValueError(f"`texture` must be (Ht, Wt, C), got "
                         f"{shape_of(texture)}")
    if uv.shape[-1] != 2:
        raise ValueError(f"`uv` must be (..., 2), got {tuple(uv.shape)}")
    lead = uv.shape[:-1]
    grid = uv_to_grid(uv.to(texture.dtype)).reshape(1, 1, -1, 2)
    out = torch.nn.functional.grid_sample(texture.permute(2, 0, 1)[None], grid, mode="bilinear",
                                          padding_mode="border", align_corners=False)  # (1, C, 1, P)
    return out[0, :, 0].T.reshape(*lead, texture.shape[-1])


def render_texture(verts: torch.Tensor, faces: torch.Tensor, uvs: torch.Tensor, texture: torch.Tensor,
                   c2w: torch.Tensor, K: torch.Tensor, image_size, background=1.0, shading: Optional[str] = None,
                   ambient: float = 0.45, cull_back_faces: bool = True,
                   faces_uvs: Optional[torch.Tensor] = None) -> dict:
    """Render a textured mesh: uv interpolated with the fragments' barycentrics, then a bilinear
    look-up in ``texture`` (see the module docstring for the uv convention).

    Args:
        verts: (V, 3) float world; no gradient flows to it. faces: (F, 3) int64.
        uvs: texture coordinates in one of three layouts: (V, 2) one per vertex; (F, 3, 2) one per
            face corner (seams and per-face atlases); or (T, 2) together with ``faces_uvs`` (F, 3)
            int64 (``TriMesh.verts_uvs`` / ``faces_uvs``).
        texture: (Ht, Wt, C) float, row 0 at the top (v = 1); may require grad; not clamped.
        c2w, K, image_size, background, shading, ambient, cull_back_faces: as in
            :func:`render_vertex_colors`.
    Returns:
        dict as :func:`render_vertex_colors`, ``rgb`` (N, H, W, C) in the dtype of ``texture``;
        plus ``uv`` (N, H, W, 2) the interpolated coordinates (0 where empty). Differentiable
        w.r.t. ``texture`` (and, through the look-up, ``uvs``), not ``verts``.
    """
    F = faces.shape[0]
    if faces_uvs is not None:
        if tuple(faces_uvs.shape) != (F, 3):
            raise ValueError(f"`faces_uvs` must be (F, 3) = ({F}, 3), got {tuple(faces_uvs.shape)}")
        if uvs.ndim != 2 or uvs.shape[1] != 2:
            raise ValueError(f"`uvs` must be (T, 2) with `faces_uvs`, got {tuple(uvs.shape)}")
        values, index = uvs, faces_uvs.long()
    elif uvs.ndim == 3 and tuple(uvs.shape) == (F, 3, 2):
        values, index = uvs.reshape(F * 3, 2), torch.arange(F * 3, device=uvs.device).reshape(F, 3)
    elif uvs.ndim == 2 and tuple(uvs.shape) == (verts.shape[0], 2):
        values, index = uvs, faces
    else:
        raise ValueError(f"`uvs` must be (V, 2) = ({verts.shape[0]}, 2) or (F, 3, 2) = ({F}, 3, 2), "
                         f"got {tuple(uvs.shape)}")
    if not torch.is_tensor(texture) or texture.ndim != 3:
        raise ValueError(f"`texture` must be (Ht, Wt, C), got "
                         f"{shape_of(texture)}")
    frags = fragments(verts, faces, c2w, K, image_size, shading, ambient, cull_back_faces)
    uv = interpolate(values, index, frags["face"], frags["bary"].to(values.dtype))
    colour = sample_texture(texture, uv)
    out = _finish(colour, frags, background)
    out["uv"] = uv
    return out
