"""Settings and input checks shared by the rasterizing renderers."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple, Union

import torch

from lib.cameras import check_pose
from lib.checks import shape_of


@dataclass
class RenderSettings:
    """Knobs of the mesh and point renderers.

    Attributes:
        image_size: H, or (H, W), in pixels. PyTorch3D's CPU rasterizer is naive per pixel:
            64-128 px for smoke runs, 256-512 px on a GPU.
        background: RGB in [0, 1] of pixels no geometry covers.
        shading: "phong" (lit by a light at each camera, "headlight"), "flat" (phong with
            face normals) or "unlit" (raw texture / vertex colour).
        ambient: ambient light intensity in [0, 1]; the rest of the light is diffuse.
        specular: specular intensity (0 disables highlights).
        near: faces are clipped where camera z < near (world units), so that geometry reaching
            behind the camera (a floor the camera stands over) still renders correctly.
        point_radius: splat radius of each point, in NDC units (2 = image height).
        points_per_pixel: how many nearest points are composited per pixel.
        device: where rendering runs ("cpu" or "cuda"); inputs are moved there.
    """

    image_size: Union[int, Tuple[int, int]] = 128
    background: Tuple[float, float, float] = (1.0, 1.0, 1.0)
    shading: str = "phong"
    ambient: float = 0.5
    specular: float = 0.1
    near: float = 0.01
    point_radius: float = 0.01
    points_per_pixel: int = 8
    device: Optional[str] = None

    def hw(self) -> Tuple[int, int]:
        s = self.image_size
        return (s, s) if isinstance(s, int) else (int(s[0]), int(s[1]))


def batch_cameras(c2w: torch.Tensor, K: torch.Tensor):
    """Validate and batch poses: (4, 4) or (N, 4, 4) and (3, 3) or (N, 3, 3) -> (N, 4, 4), (N, 3, 3)."""
    if not torch.is_tensor(K) or K.shape[-2:] != (3, 3):
        raise ValueError(f"`K` must be (3, 3) or (N, 3, 3) intrinsics, got "
                         f"{shape_of(K)}")
    c2w = check_pose(c2w if c2w.ndim == 3 else c2w[None])
    K = K if K.ndim == 3 else K[None]
    if K.shape[0] not in (1, c2w.shape[0]):
        raise ValueError(f"`K` has {K.shape[0]} cameras but `c2w` has {c2w.shape[0]}")
    return c2w, K.expand(c2w.shape[0], 3, 3)
