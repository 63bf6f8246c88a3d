"""Single-view 3D reconstruction: one image in, a voxel grid, a point cloud or a mesh out.

An :class:`ImageEncoder` (torchvision's ResNet-18 without its classifier: ImageNet weights on
Colab, random weights offline) turns a (B, 3, H, W) image into a (B, 512) feature; one of three
decoders turns the feature into a shape in the object's canonical frame (``lib.data.r2n2``:
bounding box centred at the origin, diagonal 1, inside [-0.5, 0.5]^3):

- :class:`VoxelDecoder`: a 3D transposed-convolution decoder in the style of Pix2Vox-F's
  (a (C, 2, 2, 2) seed, four stride-2 transposed convolutions 2 -> 4 -> 8 -> 16 -> 32),
  giving (B, 32, 32, 32) occupancy logits ``[ix, iy, iz]`` on [-0.5, 0.5]^3;
- :class:`PointDecoder`: an MLP to (B, N, 3) points (tanh-bounded to the box);
- :class:`MeshDecoder`: an MLP to per-vertex offsets of a level-4 ico-sphere (2562 vertices,
  5120 faces), starting from the sphere itself (the last layer is zero-initialised).

:class:`MeanShapeBaseline` predicts the same shape for every image (the mean training
occupancy, thresholded): what a model that ignores its input can do at best, roughly.
Training and evaluation helpers: :func:`make_step` (one step for ``lib.train.fit``),
:func:`prediction_points` (any output -> points for the F-score) and :func:`evaluate`.

Example (CPU):
    >>> model = SingleViewModel("mesh", image_size=64)
    >>> verts = model(torch.rand(2, 3, 64, 64))
    >>> verts.shape, model.decoder.faces.shape
    (torch.Size([2, 2562, 3]), torch.Size([5120, 3]))
"""
from __future__ import annotations

from typing import Dict, Optional, Sequence

import torch
from torch import nn

from lib.voxels import occupancy_logits

KINDS = ("voxels", "points", "mesh")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
GRID_BOUNDS = (-0.5, 0.5)


def check_images(images, image_size: int, name: str = "images") -> None:
    """Raise ``ValueError`` unless ``images`` is (B, 3, image_size, image_size) float."""
    got = tuple(images.shape) if torch.is_tensor(images) else type(images).__name__
    if not torch.is_tensor(images) or images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"`{name}` must be (B, 3, H, W) RGB in [0, 1], got {got}")
    if tuple(images.shape[-2:]) != (image_size, image_size):
        raise ValueError(f"the encoder expects {image_size}x{image_size} images, i.e. `{name}` of shape "
                         f"(B, 3, {image_size}, {image_size}), got {got}; resize them (R2N2Dataset(image_size="
                         f"{image_size})) or build the encoder with image_size={images.shape[-1]}")
    if not images.is_floating_point():
        raise ValueError(f"`{name}` must be float in [0, 1], got dtype {images.dtype} (divide uint8 images by 255)")


class ImageEncoder(nn.Module):
    """ResNet-18 features of an RGB image.

    Args:
        image_size: the (square) input size this encoder accepts; other sizes raise ValueError.
        pretrained: load torchvision's ImageNet weights (``ResNet18_Weights.IMAGENET1K_V1``, a
            download: Colab only) instead of random ones.
    Shapes:
        (B, 3, image_size, image_size) float in [0, 1] -> (B, 512).
    """

    feature_dim = 512

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
        check_images(images, self.image_size)
        return self.net((images - self.mean) / self.std)


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
        kind: the output representation. image_size, pretrained: see :class:`ImageEncoder`.
        **decoder_kwargs: passed to the decoder (``n_points``, ``level``, ``channels``, ...).
    Shapes:
        (B, 3, S, S) -> voxels (B, 32, 32, 32) logits | points (B, N, 3) | mesh verts (B, V, 3).
    """

    def __init__(self, kind: str, image_size: int = 64, pretrained: bool = False, **decoder_kwargs):
        super().__init__()
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        self.kind = kind
        self.encoder = ImageEncoder(image_size, pretrained)
        decoder = {"voxels": VoxelDecoder, "points": PointDecoder, "mesh": MeshDecoder}[kind]
        self.decoder = decoder(ImageEncoder.feature_dim, **decoder_kwargs)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(images))


# ------------------------------------------------------------------------------- mesh helpers
def sample_mesh_points(verts: torch.Tensor, faces: torch.Tensor, n: int,
                       generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """(B, n, 3) points uniform by area on B meshes sharing ``faces`` (F, 3); differentiable in ``verts`` (B, V, 3).

    Faces are drawn with probability proportional to area, then barycentric coordinates
    ``(1 - sqrt(u), sqrt(u) (1 - v), sqrt(u) v)`` (as ``lib.geometry.sample_surface``).
    """
    tri = verts[:, faces]  # (B, F, 3, 3)
    area = torch.linalg.cross(tri[:, :, 1] - tri[:, :, 0], tri[:, :, 2] - tri[:, :, 0]).norm(dim=-1)
    # random numbers are drawn on the CPU (``generator`` is a CPU generator), then moved
    idx = torch.multinomial(area.detach().cpu() + 1e-12, n, replacement=True, generator=generator)  # (B, n)
    u, v = torch.rand(2, *idx.shape, 1, generator=generator).to(verts.device)
    idx = idx.to(verts.device)
    su = u.sqrt()
    a, b, c = torch.gather(tri, 1, idx[..., None, None].expand(-1, -1, 3, 3)).unbind(2)
    return (1 - su) * a + su * (1 - v) * b + su * v * c


def laplacian_smoothing(verts: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """(B,) uniform Laplacian smoothing loss of B meshes sharing ``faces``: batched
    ``lib.losses.mesh_laplacian_smoothing`` (mean over vertices of |mean of neighbours - v|)."""
    from lib.losses import mesh_edges

    e = mesh_edges(faces)
    src, dst = torch.cat([e[:, 0], e[:, 1]]), torch.cat([e[:, 1], e[:, 0]])
    ones = torch.ones_like(src, dtype=verts.dtype)
    deg = torch.zeros(verts.shape[1], dtype=verts.dtype, device=verts.device).index_add_(0, src, ones)
    nbr = torch.zeros_like(verts).index_add_(1, src, verts[:, dst])
    return (nbr / deg.clamp(min=1)[:, None] - verts).norm(dim=-1).mean(1)


# ------------------------------------------------------------------------- training and eval
def batch_from(data: dict, index: torch.Tensor, view: torch.Tensor) -> dict:
    """Images (B, 3, H, W) float [0, 1] of views ``view`` of models ``index``, with their targets
    (``voxels`` (B, 32, 32, 32) float, ``points`` (B, P, 3)), from ``lib.data.r2n2.to_tensors``."""
    return {"images": data["images"][index, view].float() / 255.0, "voxels": data["voxels"][index].float(),
            "points": data["points"][index]}


def reconstruction_loss(kind: str, output: torch.Tensor, batch: dict, smooth_weight: float = 0.1,
                        faces: Optional[torch.Tensor] = None, n_samples: int = 1024, n_gt: int = 1024,
                        generator: Optional[torch.Generator] = None) -> Dict[str, torch.Tensor]:
    """The training loss of each representation, ``{"loss": scalar, ...its parts}``.

    voxels: binary cross-entropy of the logits against the grid; points: chamfer distance to
    ``n_gt`` of the ground-truth surface samples (a random subset each call: chamfer's nearest-
    neighbour search costs N x M); mesh: chamfer of ``n_samples`` points sampled on the predicted
    mesh (``faces`` (F, 3)) to those, + ``smooth_weight`` x :func:`laplacian_smoothing`.
    """
    from lib.losses import chamfer_distance, voxel_bce

    if kind == "voxels":
        return {"loss": voxel_bce(output, batch["voxels"])}
    gt = batch["points"]
    if n_gt < gt.shape[1]:
        gt = gt[:, torch.randperm(gt.shape[1], generator=generator)[:n_gt].to(gt.device)]
    if kind == "points":
        return {"loss": chamfer_distance(output, gt).mean()}
    pts = sample_mesh_points(output, faces, n_samples, generator)
    cd = chamfer_distance(pts, gt).mean()
    smooth = laplacian_smoothing(output, faces).mean()
    return {"loss": cd + smooth_weight * smooth, "chamfer": cd, "smooth": smooth}


def make_step(model: nn.Module, data: dict, optimizer, generator: torch.Generator, batch_size: int = 16,
              smooth_weight: float = 0.1, device="cpu", features: Optional[torch.Tensor] = None):
    """A ``step(i) -> {"loss": ...}`` for ``lib.train.fit``: a random view of ``batch_size``
    random training models (drawn from ``generator``), forward, loss, backward, update.

    Args:
        model: a :class:`SingleViewModel`, or (with ``features``) just its decoder.
        data: ``lib.data.r2n2.to_tensors`` of the training split.
        features: optional (N, V, 512) encoder features of every view of ``data``; then
            ``model`` is a decoder trained on them (the encoder stays frozen: cheap sweeps).
    """
    n, v = data["images"].shape[:2]
    kind = model.kind if features is None else {VoxelDecoder: "voxels", PointDecoder: "points",
                                                 MeshDecoder: "mesh"}[type(model)]
    faces = model.decoder.faces if features is None and kind == "mesh" else getattr(model, "faces", None)

    def step(i: int) -> dict:
        model.train()
        idx = torch.randint(n, (batch_size,), generator=generator)
        view = torch.randint(v, (batch_size,), generator=generator)
        batch = {k: t.to(device) for k, t in batch_from(data, idx, view).items()}
        inputs = batch["images"] if features is None else features[idx, view].to(device)
        parts = reconstruction_loss(kind, model(inputs), batch, smooth_weight, faces, generator=generator)
        optimizer.zero_grad()
        parts["loss"].backward()
        optimizer.step()
        return {k: float(t.detach()) for k, t in parts.items()}

    return step


@torch.no_grad()
def prediction_points(kind: str, output: torch.Tensor, n: int, faces: Optional[torch.Tensor] = None,
                      generator: Optional[torch.Generator] = None) -> list:
    """Points on each predicted shape, for the F-score: a list of B tensors (n, 3) (or None for an
    empty voxel prediction). Voxels: marching cubes of the probabilities at 0.5, then surface
    samples; points: the points; mesh: surface samples."""
    from lib.geometry import sample_surface
    from lib.voxels import voxels_to_mesh

    if kind == "points":
        return list(output)
    if kind == "mesh":
        return list(sample_mesh_points(output, faces, n, generator))
    out = []
    for logits in output:
        mesh = voxels_to_mesh(torch.sigmoid(logits).cpu(), bounds=GRID_BOUNDS, smooth=True, threshold=0.5)
        out.append(sample_surface(mesh, n, generator)[0] if mesh.num_faces else None)
    return out


@torch.no_grad()
def evaluate(predict, data: dict, views: Sequence[int], kind: str, thresholds=(0.01, 0.02, 0.03, 0.04, 0.05),
             n_points: int = 1024, faces=None, batch_size: int = 32, seed: int = 0,
             features: Optional[torch.Tensor] = None) -> dict:
    """F-scores of predictions on every (model, view) pair of ``data``.

    Args:
        predict: ``images (B, 3, H, W) -> output`` of the representation ``kind`` (a model in eval
            mode, or a baseline's ``lambda images: ...``); with ``features`` (N, V, F), it gets
            the (B, F) features of those views instead (a decoder on a frozen encoder).
        data: ``lib.data.r2n2.to_tensors`` of held-out models. views: which views to use.
    Returns:
        dict with ``f1`` (M, T) float (M = models x views, T thresholds), ``precision`` and
        ``recall`` likewise, ``thresholds`` (T,), ``model`` (M,) and ``view`` (M,) indices, and
        ``points``: the M predicted point clouds (None for an empty prediction).
    """
    from lib.metrics import f_score

    gen = torch.Generator().manual_seed(seed)
    pairs = [(i, v) for i in range(data["images"].shape[0]) for v in views]
    rows, clouds = [], []
    for s in range(0, len(pairs), batch_size):
        idx = torch.tensor([p[0] for p in pairs[s:s + batch_size]])
        view = torch.tensor([p[1] for p in pairs[s:s + batch_size]])
        batch = batch_from(data, idx, view)
        output = predict(batch["images"] if features is None else features[idx, view])
        if len(output) != len(idx):
            raise ValueError(f"`predict` returned {len(output)} predictions for a batch of {len(idx)} images")
        for i, pts in zip(idx, prediction_points(kind, output, n_points, faces, gen)):
            empty = {t: (0.0, 0.0, 0.0) for t in thresholds}  # nothing predicted: nothing right
            fs = f_score(pts, data["points"][i], thresholds) if pts is not None else empty
            rows.append([fs[t] for t in thresholds])
            clouds.append(pts)
    prf = torch.tensor(rows)  # (M, T, 3)
    return {"precision": prf[..., 0], "recall": prf[..., 1], "f1": prf[..., 2], "thresholds": torch.tensor(thresholds),
            "model": torch.tensor([p[0] for p in pairs]), "view": torch.tensor([p[1] for p in pairs]), "points": clouds}


class MeanShapeBaseline:
    """Predict the mean training shape whatever the image.

    The mean occupancy of the training grids is thresholded at the level that maximises the
    mean IoU with them; this one grid is the prediction, in every representation (its marching-
    cubes surface for points and meshes).

    Args:
        train_voxels: (N, 32, 32, 32) bool training grids ``[ix, iy, iz]``.
    """

    def __init__(self, train_voxels: torch.Tensor):
        from lib.metrics import voxel_iou

        if train_voxels.ndim != 4:
            raise ValueError(f"`train_voxels` must be (N, R, R, R), got {tuple(train_voxels.shape)}")
        self.mean = train_voxels.float().mean(0)
        levels = torch.linspace(0.05, 0.95, 19)
        ious = [float(voxel_iou((self.mean > t).expand_as(train_voxels), train_voxels.bool()).mean()) for t in levels]
        self.threshold = float(levels[int(torch.tensor(ious).argmax())])
        self.voxels = self.mean > self.threshold

    def logits(self, batch_size: int) -> torch.Tensor:
        """(B, 32, 32, 32) logits whose sigmoid is above 0.5 exactly on the mean shape."""
        return (self.voxels.float() * 2 - 1).mul(10).expand(batch_size, *self.voxels.shape)

    def predict(self, images: torch.Tensor) -> torch.Tensor:
        """The voxel 'prediction' for a batch of images (they are ignored)."""
        return self.logits(images.shape[0])
