"""Single-view 3D reconstruction: one image in, a voxel grid, a point cloud or a mesh out.

A :class:`ResNet18Encoder` (torchvision's ResNet-18 without its classifier: ImageNet weights on
Colab, random weights offline) turns a (B, H, W, 3) image into a (B, 512) feature; one of three
decoders turns the feature into a shape in the object's canonical frame (``lib.data.r2n2``:
bounding box centred at the origin, diagonal 1, inside [-0.5, 0.5]^3):

- :class:`VoxelDecoder`: a 3D transposed-convolution decoder in the style of Pix2Vox-F's
  (a (C, 2, 2, 2) seed, four stride-2 transposed convolutions 2 -> 4 -> 8 -> 16 -> 32),
  giving (B, 32, 32, 32) occupancy logits ``[ix, iy, iz]`` on [-0.5, 0.5]^3;
- :class:`PointDecoder`: an MLP to (B, N, 3) points (tanh-bounded to the box);
- :class:`MeshDecoder`: an MLP to per-vertex offsets of a level-4 ico-sphere (2562 vertices,
  5120 faces), starting from the sphere itself (the last layer is zero-initialised).

Training, evaluation and the mean-shape baseline are in :mod:`lib.methods.recon`.

Example (CPU):
    >>> model = SingleViewModel("mesh", image_size=64)
    >>> verts = model(torch.rand(2, 64, 64, 3))
    >>> verts.shape, model.decoder.faces.shape
    (torch.Size([2, 2562, 3]), torch.Size([5120, 3]))
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import nn

from lib.checks import shape_of
from lib.images import channels_first_hint, to_nchw
from lib.models.seeding import seeded
from lib.voxels import occupancy_logits

KINDS = ("voxels", "points", "mesh")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _check_images(images, image_size: int, name: str = "images") -> None:
    """Raise ``ValueError`` unless ``images`` is (B, image_size, image_size, 3) float."""
    got = shape_of(images)
    if not torch.is_tensor(images) or images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"`{name}` must be (B, H, W, 3) RGB in [0, 1], got {got}{channels_first_hint(images, 4)}")
    if tuple(images.shape[1:3]) != (image_size, image_size):
        raise ValueError(f"the encoder expects {image_size}x{image_size} images, i.e. `{name}` of shape "
                         f"(B, {image_size}, {image_size}, 3), got {got}; resize them (R2N2Dataset(image_size="
                         f"{image_size})) or build the encoder with image_size={images.shape[1]}")
    if not images.is_floating_point():
        raise ValueError(f"`{name}` must be float in [0, 1], got dtype {images.dtype} (divide uint8 images by 255)")


class ResNet18Encoder(nn.Module):
    """ResNet-18 features of an RGB image (torchvision's network without its classifier).

    Args:
        image_size: the (square) input size this encoder accepts; other sizes raise ValueError.
        pretrained: load torchvision's ImageNet weights (``ResNet18_Weights.IMAGENET1K_V1``, a
            download: Colab only) instead of random ones.
    Shapes:
        (B, image_size, image_size, 3) float in [0, 1] -> (B, 512) (channels first inside).
    """

    feature_dim = 512

    @seeded
    def __init__(self, image_size: int = 64, pretrained: bool = False):
        super().__init__()
        import torchvision

        weights = torchvision.models.ResNet18_Weights.IMAGENET1K_V1 if pretrained else None
        self.net = torchvision.models.resnet18(weights=weights)
        self.net.fc = nn.Identity()
        self.image_size = int(image_size)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        _check_images(images, self.image_size)
        x = to_nchw(images, name="ResNet18Encoder: images").contiguous()  # torch's default NCHW memory layout
        return self.net((x - self.mean) / self.std)


class VoxelDecoder(nn.Module):
    """(B, F) features -> (B, 32, 32, 32) occupancy logits ``[ix, iy, iz]`` (Pix2Vox-F style).

    A linear layer makes a (C0, 2, 2, 2) volume; each of four blocks ConvTranspose3d(kernel 4,
    stride 2, padding 1) + BatchNorm3d + ReLU doubles the resolution; a 1x1x1 convolution
    gives one logit per voxel. Its bias starts at the log-odds of ``occupancy_prior`` (the
    fraction of occupied voxels in the training grids), so training starts from the right
    amount of "empty" instead of spending its first hundreds of steps learning that most of
    the grid is.

    Better still, ``mean_shape`` (the (32, 32, 32) mean of the training grids) starts a learnable
    per-voxel prior logit at the mean shape and zeroes the last convolution (see
    :meth:`set_mean_shape`): the untrained decoder predicts the mean training shape for every
    image, and training learns what the image changes.
    """

    @seeded
    def __init__(self, feature_dim: int = 512, channels: Sequence[int] = (128, 64, 32, 16, 8),
                 occupancy_prior: float = 0.05, mean_shape: Optional[torch.Tensor] = None):
        super().__init__()
        self.c0 = channels[0]
        self.fc = nn.Linear(feature_dim, self.c0 * 8)
        blocks = []
        for cin, cout in zip(channels[:-1], channels[1:]):
            blocks += [nn.ConvTranspose3d(cin, cout, 4, stride=2, padding=1, bias=False), nn.BatchNorm3d(cout), nn.ReLU()]
        self.up = nn.Sequential(*blocks)
        self.head = nn.Conv3d(channels[-1], 1, 1)
        p = min(max(float(occupancy_prior), 1e-4), 1 - 1e-4)
        nn.init.constant_(self.head.bias, torch.logit(torch.tensor(p)).item())
        self.prior = nn.Parameter(torch.zeros((32, 32, 32)))  # per-voxel prior logit (0: none)
        if mean_shape is not None:
            self.set_mean_shape(mean_shape)

    @torch.no_grad()
    def set_mean_shape(self, mean_occupancy: torch.Tensor, eps: float = 0.02) -> None:
        """Start from a mean shape: ``prior = logit(clamp(mean_occupancy, eps, 1 - eps))`` and the
        last convolution at zero, so the output is exactly the prior until training moves it.

        Args:
            mean_occupancy: (32, 32, 32) fraction of training grids occupied at each voxel.
        """
        self.prior.copy_(occupancy_logits(mean_occupancy, eps, name="mean_shape"))
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.fc(features)).view(-1, self.c0, 2, 2, 2)
        return self.head(self.up(x))[:, 0] + self.prior


def _mlp(sizes: Sequence[int]) -> nn.Sequential:
    layers = []
    for a, b in zip(sizes[:-2], sizes[1:-1]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(sizes[-2], sizes[-1]))


class PointDecoder(nn.Module):
    """(B, F) features -> (B, n_points, 3) points in [-0.5, 0.5]^3 (an MLP, tanh / 2 at the end)."""

    @seeded
    def __init__(self, feature_dim: int = 512, n_points: int = 1024, hidden: Sequence[int] = (512, 1024)):
        super().__init__()
        self.n_points = n_points
        self.mlp = _mlp([feature_dim, *hidden, n_points * 3])

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return 0.5 * torch.tanh(self.mlp(features)).view(-1, self.n_points, 3)


class MeshDecoder(nn.Module):
    """(B, F) features -> (B, V, 3) vertices of a deformed ico-sphere (faces: ``self.faces``).

    Args:
        level: ico-sphere subdivision level (4: 2562 vertices, 5120 faces). radius: its radius.
    """

    @seeded
    def __init__(self, feature_dim: int = 512, level: int = 4, radius: float = 0.3,
                 hidden: Sequence[int] = (512, 1024)):
        super().__init__()
        from lib.primitives import ico_sphere

        sphere = ico_sphere(level, radius)
        self.register_buffer("template", sphere.verts.float())
        self.register_buffer("faces", sphere.faces.long())
        self.mlp = _mlp([feature_dim, *hidden, sphere.num_verts * 3])
        nn.init.zeros_(self.mlp[-1].weight)
        nn.init.zeros_(self.mlp[-1].bias)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.template + self.mlp(features).view(-1, *self.template.shape)


class SingleViewModel(nn.Module):
    """Encoder + the decoder of ``kind`` ("voxels", "points" or "mesh").

    Args:
        kind: the output representation. image_size, pretrained: see :class:`ResNet18Encoder`.
        **decoder_kwargs: passed to the decoder (``n_points``, ``level``, ``channels``, ...).
    Shapes:
        (B, S, S, 3) -> voxels (B, 32, 32, 32) logits | points (B, N, 3) | mesh verts (B, V, 3).
    """

    @seeded
    def __init__(self, kind: str, image_size: int = 64, pretrained: bool = False, **decoder_kwargs):
        super().__init__()
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        self.kind = kind
        self.encoder = ResNet18Encoder(image_size, pretrained)
        decoder = {"voxels": VoxelDecoder, "points": PointDecoder, "mesh": MeshDecoder}[kind]
        self.decoder = decoder(ResNet18Encoder.feature_dim, **decoder_kwargs)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(images))
