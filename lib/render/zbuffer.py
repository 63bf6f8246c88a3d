"""A small z-buffer rasteriser in pure torch: visibility, barycentric interpolation, flat shading.

Three steps, each a plain function (cameras in ``lib.cameras``' convention: c2w with OpenCV
axes, K in pixels, pixel centres at +0.5):

1. :func:`rasterize`, *visibility*: which face each pixel sees, at what camera depth, and the
   perspective-correct barycentric coordinates of the pixel centre inside that face.
2. :func:`interpolate`, per-vertex (or per-corner) attributes at each pixel from those
   barycentrics: colours, normals, texture coordinates. Differentiable w.r.t. the attributes,
   so a texture or vertex colours can be fitted through it.
3. :func:`render_views`, flat shading with a headlight, built on the two.

Everything runs on the device (and in the dtype) of ``verts``; the cameras are moved there.

Cost: PyTorch3D's CPU rasterizer tests every face at every pixel (faces x pixels); this one
visits only the pixels inside each face's bounding box, which for a few hundred faces and a
few dozen small views is 10-50x faster. It keeps one face per pixel (no blending, no
anti-aliasing: supersample and average for that) and is meant for small meshes and images.

Example (CPU)::

    >>> from lib import cameras, primitives
    >>> mesh = primitives.box(size=(0.6, 0.6, 0.6))
    >>> c2w = cameras.orbit_poses(3, elevation=20.0, distance=2.0)  # (3, 4, 4)
    >>> frags = rasterize(mesh.verts, mesh.faces, c2w, cameras.intrinsics_from_fov(40.0, 32), 32)
    >>> frags["face"].shape, frags["bary"].shape, bool(frags["mask"][:, 16, 16].all())
    (torch.Size([3, 32, 32]), torch.Size([3, 32, 32, 3]), True)
"""
from __future__ import annotations

import torch

from lib.cameras import image_hw, project
from lib.images import box_downsample
from lib.mesh import TriMesh, face_normals
from lib.render.common import batch_cameras


def face_facing(verts: torch.Tensor, faces: torch.Tensor, c2w: torch.Tensor) -> torch.Tensor:
    """(N, F) cosine between each face's unit normal and the ray from each camera centre to the
    face's centroid: negative for a face turned towards the camera, positive for a back face.

    Args:
        verts: (V, 3) float world. faces: (F, 3) int64. c2w: (N, 4, 4).
    """
    centroid = verts[faces].mean(1)  # (F, 3)
    view = torch.nn.functional.normalize(centroid[None] - c2w[:, None, :3, 3], dim=-1)  # (N, F, 3)
    return (face_normals(verts, faces)[None] * view).sum(-1)


def rasterize(verts: torch.Tensor, faces: torch.Tensor, c2w: torch.Tensor, K: torch.Tensor, image_size,
              cull_back_faces: bool = True) -> dict:
    """Visibility by z-buffer: the nearest face under each pixel centre, from N cameras.

    A pixel belongs to a face when its centre lies inside the projected triangle (edges
    included); among the faces covering it the one with the smallest camera z wins (ties go to
    the face listed last). Faces with a corner closer than 1e-3 to the camera plane are dropped.

    Args:
        verts: (V, 3) float world. faces: (F, 3) int64.
        c2w: (4, 4) or (N, 4, 4) camera-to-world. K: (3, 3) or (N, 3, 3) pixel intrinsics.
        image_size: H, or (H, W), pixels.
        cull_back_faces: skip faces turned away from the camera (:func:`face_facing` >= 0):
            right for closed meshes wound outward (``lib.primitives``); False renders both sides.
    Returns:
        dict with ``face`` (N, H, W) int64 index into ``faces`` (-1 where empty), ``mask``
        (N, H, W) bool, ``depth`` (N, H, W) float camera z (0 where empty) and ``bary`` (N, H, W, 3)
        float perspective-correct barycentric weights of the face's three corners (sum 1; 0 where
        empty). ``bary`` carries gradients w.r.t. ``verts`` inside faces (not across silhouettes).
    """
    c2w, K = (x.to(verts) for x in batch_cameras(c2w, K))
    N, (H, W) = c2w.shape[0], image_hw(image_size)
    f = faces.long()
    F = f.shape[0]
    uv, z = project(verts, c2w, K)  # (N, V, 2) pixels, (N, V) camera z
    tri_uv, tri_z = torch.nan_to_num(uv)[:, f], z[:, f]  # (N, F, 3, 2), (N, F, 3)
    ok = (tri_z > 1e-3).all(-1)
    if cull_back_faces:
        ok = ok & (face_facing(verts, f, c2w) < 0)
    # pixels (x, y) whose centre (x + 0.5, y + 0.5) lies in each face's bounding box
    dev = verts.device
    size = torch.tensor([W, H], device=dev)
    lo = torch.minimum((tri_uv.amin(2) - 0.5).detach().ceil(), size.float()).clamp(min=0).long()
    hi = torch.minimum((tri_uv.amax(2) - 0.5).detach().floor(), size.float() - 1).clamp(min=-1).long()
    n_px = (hi - lo + 1).clamp(min=0).prod(-1) * ok  # (N, F)
    flat = n_px.reshape(-1)
    pair = torch.repeat_interleave(torch.arange(flat.numel(), device=dev), flat)  # (P,) index into N * F
    local = torch.arange(int(flat.sum()), device=dev) - torch.repeat_interleave(flat.cumsum(0) - flat, flat)
    width = (hi - lo + 1).clamp(min=1)[..., 0].reshape(-1)[pair]
    px = lo[..., 0].reshape(-1)[pair] + local % width
    py = lo[..., 1].reshape(-1)[pair] + local // width
    q = torch.stack([px + 0.5, py + 0.5], -1)  # (P, 2) pixel centres
    t = tri_uv.reshape(-1, 3, 2)[pair]  # (P, 3, 2)
    # edge functions: twice the signed area of the sub-triangle opposite each corner
    w = torch.stack([(t[:, (k + 1) % 3, 0] - q[:, 0]) * (t[:, (k + 2) % 3, 1] - q[:, 1])
                     - (t[:, (k + 2) % 3, 0] - q[:, 0]) * (t[:, (k + 1) % 3, 1] - q[:, 1]) for k in range(3)], 1)
    area = w.sum(1)
    inside = (area.abs() > 1e-12) & (((w >= 0).all(1)) | ((w <= 0).all(1)))
    pair, px, py = pair[inside], px[inside], py[inside]
    b = w[inside] / area[inside, None]  # (P, 3) screen-space barycentrics
    inv_z = b / tri_z.reshape(-1, 3)[pair]  # perspective correction: interpolate 1/z linearly
    depth = 1.0 / inv_z.sum(1)  # (P,) camera z
    bary = inv_z * depth[:, None]
    pix = (pair // F) * H * W + py * W + px  # (P,) flat pixel index
    zbuf = torch.full((N * H * W,), float("inf"), dtype=depth.dtype, device=dev)
    zbuf = zbuf.scatter_reduce(0, pix, depth.detach(), "amin")  # nearest depth per pixel
    front = torch.nonzero(depth.detach() <= zbuf[pix])[:, 0]  # fragments at the front (ties possible)
    win = torch.full((N * H * W,), -1, dtype=torch.long, device=dev).scatter_reduce(0, pix[front], front, "amax")
    mask = win >= 0
    sel = win[mask]
    face = torch.full((N * H * W,), -1, dtype=torch.long, device=dev)
    face[mask] = pair[sel] % F
    where = (torch.nonzero(mask)[:, 0],)
    out_bary = torch.zeros(N * H * W, 3, dtype=bary.dtype, device=dev).index_put(where, bary[sel])
    out_depth = torch.zeros(N * H * W, dtype=depth.dtype, device=dev).index_put(where, depth[sel])
    return {"face": face.reshape(N, H, W), "mask": mask.reshape(N, H, W), "depth": out_depth.reshape(N, H, W),
            "bary": out_bary.reshape(N, H, W, 3)}


def interpolate(values: torch.Tensor, faces: torch.Tensor, face: torch.Tensor, bary: torch.Tensor) -> torch.Tensor:
    """Attributes at each pixel: the barycentric mix of the corner values of the face it sees.

    Args:
        values: (V, C) float, one row per vertex (colours, normals) or per texture vertex.
        faces: (F, 3) int64 rows of ``values`` at each face's corners (the mesh's ``faces``, or
            ``faces_uvs`` with ``values = verts_uvs``).
        face, bary: from :func:`rasterize`, (..., H, W) int64 (-1 = empty) and (..., H, W, 3).
    Returns:
        (..., H, W, C) float, zero where ``face`` is -1; differentiable w.r.t. ``values`` and ``bary``.
    """
    if values.ndim != 2:
        raise ValueError(f"interpolate: `values` must be (V, C), got {tuple(values.shape)}")
    if bary.shape != face.shape + (3,):
        raise ValueError(f"interpolate: `bary` must be {tuple(face.shape) + (3,)} to match `face`, "
                         f"got {tuple(bary.shape)}")
    corners = values[faces.long()[face.clamp(min=0)]]  # (..., H, W, 3, C)
    mixed = (bary[..., None] * corners).sum(-2)
    return torch.where((face >= 0)[..., None], mixed, torch.zeros((), dtype=mixed.dtype))


def render_views(mesh: TriMesh, c2w: torch.Tensor, K: torch.Tensor, image_size, ambient: float = 0.45,
                 cull_back_faces: bool = True, supersample: int = 1) -> dict:
    """Flat-shaded renders of a small vertex-coloured mesh from N cameras (CPU friendly).

    Each face gets the mean colour of its corners, lit by a headlight:
    ``colour * (ambient + (1 - ambient) |n . view|)``. The coverage and the visible faces match
    ``lib.render.render_mesh`` (PyTorch3D; tested).

    Args:
        mesh: TriMesh with vert_colors (white if None). c2w: (N, 4, 4) or (4, 4).
        K: (N, 3, 3) or (3, 3). image_size: H, or (H, W). ambient: light every face gets.
        cull_back_faces: see :func:`rasterize`. supersample: ``s`` renders ``rgb`` at s x the size
            and averages each s x s block (antialiased edges); the other outputs are the pixel
            centres' at the asked size.
    Returns:
        dict with ``rgb`` (N, H, W, 3) float32 on white, ``mask`` (N, H, W) bool, ``face``
        (N, H, W) int64 (-1 where empty) and ``depth`` (N, H, W) camera z (0 where empty).
    """
    c2w, K = (x.to(mesh.verts) for x in batch_cameras(c2w, K))
    if int(supersample) != supersample or supersample < 1:
        raise ValueError(f"render_views: `supersample` must be an integer >= 1, got {supersample}")
    if supersample > 1:
        h, w = image_hw(image_size)
        fine = K.clone()
        fine[:, :2] *= supersample
        out = render_views(mesh, c2w, fine, (h * supersample, w * supersample), ambient, cull_back_faces)
        rgb = box_downsample(out["rgb"], int(supersample))
        frags = rasterize(mesh.verts, mesh.faces.long(), c2w, K, image_size, cull_back_faces)
        return {"rgb": rgb, "mask": frags["mask"], "face": frags["face"], "depth": frags["depth"]}
    f = mesh.faces.long()
    frags = rasterize(mesh.verts, f, c2w, K, image_size, cull_back_faces)
    face, mask = frags["face"], frags["mask"]
    N = face.shape[0]
    cols = (mesh.vert_colors if mesh.vert_colors is not None else torch.ones_like(mesh.verts))[f].mean(1)
    lit = ambient + (1 - ambient) * face_facing(mesh.verts, f, c2w).abs()  # (N, F)
    idx = face.clamp(min=0)
    shade = torch.gather(lit, 1, idx.reshape(N, -1)).reshape(*idx.shape, 1) * cols[idx]
    rgb = torch.where(mask[..., None], shade, torch.ones(3, device=shade.device))
    return {"rgb": rgb.clamp(0, 1), "mask": mask, "face": face, "depth": frags["depth"]}
