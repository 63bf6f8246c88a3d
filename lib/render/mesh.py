"""Mesh rendering with PyTorch3D: RGB, depth and mask from our cameras (see ``lib.cameras``).

Example:
    >>> import pytest
    >>> _ = pytest.importorskip("pytorch3d")  # skipped where PyTorch3D is not installed
    >>> from lib.primitives import box
    >>> from lib.cameras import orbit_poses, intrinsics_from_fov
    >>> out = render_mesh(box((0, 0, 0), (1, 1, 1)), orbit_poses(4, 20.0, 3.0),
    ...                   intrinsics_from_fov(50.0, 32), RenderSettings(image_size=32))
    >>> out["rgb"].shape, out["depth"].shape, out["mask"].shape
    (torch.Size([4, 32, 32, 3]), torch.Size([4, 32, 32]), torch.Size([4, 32, 32]))
"""
from __future__ import annotations

import torch

from lib.pytorch3d_cameras import to_pytorch3d
from lib.mesh import TriMesh
from lib.render.common import RenderSettings, batch_cameras

_SHADINGS = ("phong", "flat", "unlit")


def render_mesh(mesh, c2w: torch.Tensor, K: torch.Tensor, settings: RenderSettings = None) -> dict:
    """Render one mesh from N cameras.

    Args:
        mesh: a ``TriMesh`` or a one-mesh ``pytorch3d.structures.Meshes`` with textures.
        c2w: (4, 4) or (N, 4, 4) camera-to-world poses. K: (3, 3) or (N, 3, 3) intrinsics.
        settings: ``RenderSettings`` (image size, background, shading, device).
    Returns:
        dict with ``rgb`` (N, H, W, 3) float in [0, 1], ``depth`` (N, H, W) camera z with 0 where
        no face is hit, ``mask`` (N, H, W) bool, and ``face`` (N, H, W) int64, the index (into the
        mesh's faces) of the face seen at each pixel, -1 where none; all on ``settings.device``.
        Differentiable with respect to vertex positions and colours through PyTorch3D.
    """
    s = settings or RenderSettings()
    if s.shading not in _SHADINGS:
        raise ValueError(f"RenderSettings.shading must be one of {_SHADINGS}, got {s.shading!r}")
    device = torch.device(s.device or "cpu")
    c2w, K = batch_cameras(c2w, K)  # argument errors first, with or without PyTorch3D
    from pytorch3d.renderer import (BlendParams, HardFlatShader, HardPhongShader, Materials,
                                    MeshRasterizer, PointLights, RasterizationSettings)
    from pytorch3d.renderer.mesh.shader import ShaderBase

    n = c2w.shape[0]
    meshes = (mesh.to_pytorch3d(device) if isinstance(mesh, TriMesh) else mesh.to(device)).extend(n)
    cams = to_pytorch3d(c2w, K, s.hw(), device)
    # blur_radius=0 leaves one-pixel cracks along shared edges in PyTorch3D 0.7.9's rasterizer
    # (measured: a 12x12-pixel quad loses its 12 diagonal pixels); a 1e-8 NDC margin closes them.
    raster = MeshRasterizer(cameras=cams, raster_settings=RasterizationSettings(
        image_size=s.hw(), blur_radius=1e-8, faces_per_pixel=1, z_clip_value=s.near))
    frags = raster(meshes)
    blend = BlendParams(background_color=tuple(s.background))
    if s.shading == "unlit":
        texels = meshes.sample_textures(frags)[..., 0, :3]  # (N, H, W, 3)
        rgb = torch.where(frags.pix_to_face[..., :1] >= 0, texels, torch.tensor(s.background, device=device))
    else:
        lights = PointLights(location=c2w[:, :3, 3].to(device), device=device,
                             ambient_color=((s.ambient,) * 3,), diffuse_color=((1 - s.ambient,) * 3,),
                             specular_color=((s.specular,) * 3,))
        shader_cls = HardPhongShader if s.shading == "phong" else HardFlatShader
        shader: ShaderBase = shader_cls(device=device, cameras=cams, lights=lights, blend_params=blend,
                                        materials=Materials(device=device, shininess=32.0))
        rgb = shader(frags, meshes)[..., :3].clamp(0, 1)
    mask = frags.pix_to_face[..., 0] >= 0
    depth = torch.where(mask, frags.zbuf[..., 0], torch.zeros((), device=device))
    # pix_to_face indexes the packed faces of the n copies: subtract each copy's offset.
    offsets = meshes.mesh_to_faces_packed_first_idx().view(n, 1, 1)
    face = torch.where(mask, frags.pix_to_face[..., 0] - offsets, -1)
    return {"rgb": rgb, "depth": depth, "mask": mask, "face": face}
