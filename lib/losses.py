"""Losses for fitting 3D representations: chamfer distance (and the nearest-neighbour search
under it), voxel BCE, mesh regularisers, the eikonal term, and the KL and GAN losses of a VAE-GAN.

Pure functions, tensors in and tensors out, differentiable with respect to their float inputs.
Nothing here needs PyTorch3D: :func:`nearest_neighbors` has a pure-torch path (chunked
``torch.cdist``) and uses ``pytorch3d.ops.knn_points`` only where asked or where it is faster
(CUDA, with PyTorch3D installed).

**Chamfer convention** (one scale everywhere in the course, the same as
``pytorch3d.loss.chamfer_distance`` with its defaults): *squared* Euclidean distances to the
nearest neighbour, *averaged* over the points of each cloud, the two directions *summed*::

    CD(X, Y) = mean_{x in X} min_{y in Y} |x - y|^2  +  mean_{y in Y} min_{x in X} |x - y|^2

in world units squared. Two clouds offset by a small distance d have ``CD = 2 d^2``.

Example (CPU)::

    >>> x, y = torch.rand(2, 100, 3), torch.rand(2, 80, 3)
    >>> chamfer_distance(x, y).shape, chamfer_distance(x[0], y[0]).shape
    (torch.Size([2]), torch.Size([]))
    >>> float(chamfer_distance(torch.zeros(1, 3), torch.tensor([[0.0, 0.5, 0.0]])))  # 0.25 each way
    0.5
    >>> v, f = torch.rand(10, 3), torch.randint(0, 10, (16, 3))
    >>> mesh_laplacian_smoothing(v, f).shape, mesh_laplacian_smoothing(v.expand(4, 10, 3), f).shape
    (torch.Size([]), torch.Size([4]))
"""
from __future__ import annotations

import importlib.util
from typing import Optional, Tuple

import torch
import torch.nn.functional as F

from lib.checks import shape_of
from lib.mesh import mesh_edges

KNN_BACKENDS = ("auto", "torch", "pytorch3d")
_KNN_BUDGET = 1 << 21  # distances held at once by the pure-torch search (8 MiB in float32; larger
# blocks are slower on CPU: each fresh block is new memory to page in)


# ------------------------------------------------------------------- nearest neighbours, chamfer
def _check_clouds(x: torch.Tensor, name: str, any_dim: bool = False) -> torch.Tensor:
    if not torch.is_tensor(x) or x.ndim not in (2, 3) or (x.shape[-1] != 3 and not any_dim) or x.shape[-1] < 1:
        shape = shape_of(x)
        what = "(B, N, D) or (N, D) points or features" if any_dim else "(B, N, 3) or (N, 3) points"
        raise ValueError(f"`{name}` must be {what}, got {shape}")
    if x.shape[-2] == 0:
        raise ValueError(f"`{name}` has no points (shape {tuple(x.shape)}); a nearest neighbour needs at least one")
    return x if x.ndim == 3 else x[None]


def _knn_backend(backend: str, device: torch.device) -> str:
    if backend not in KNN_BACKENDS:
        raise ValueError(f"backend must be one of {KNN_BACKENDS}, got {backend!r}")
    if backend == "auto":  # PyTorch3D's kernel wins on CUDA; on CPU chunked cdist is faster
        on_cuda = device.type == "cuda"
        return "pytorch3d" if on_cuda and importlib.util.find_spec("pytorch3d") is not None else "torch"
    return backend


def nearest_neighbors(x: torch.Tensor, y: torch.Tensor, backend: str = "auto",
                      chunk: Optional[int] = None, k: int = 1) -> Tuple[torch.Tensor, torch.Tensor]:
    """For each point of ``x``, its nearest point in ``y`` (same batch entry), or its ``k`` nearest.

    The pure-torch path finds the index over chunks of ``x`` (at most ``B * chunk * M`` distances
    at once; for ``k = 1`` the minimum of ``|y|^2 - 2 x.y``, else ``torch.cdist`` and ``topk``),
    then recomputes the squared distance to that neighbour exactly, so it is differentiable in
    both clouds like ``pytorch3d.ops.knn_points(x, y, K=1)``.

    Args:
        x: (B, N, D) or (N, D) float points (D = 3) or features of any width D (a k-NN graph in
            feature space, as DGCNN builds). y: (B, M, D) or (M, D), same batch size and D.
        backend: "torch" (pure torch, anywhere), "pytorch3d" (``knn_points``; needs PyTorch3D),
            or "auto": PyTorch3D on CUDA when it is installed, else torch.
        chunk: query points per ``cdist`` call on the torch path (default: a 64 MiB budget).
        k: neighbours per point (1 <= k <= M). With ``x is y`` the first neighbour is the point itself.
    Returns:
        sq_dists: (B, N) float squared distances (``(N,)`` for unbatched input), world units^2;
            (B, N, k) (``(N, k)``) sorted ascending when ``k > 1``.
        idx: (B, N) int64 index into ``y`` of each nearest neighbour (``(N,)`` unbatched);
            (B, N, k) (``(N, k)``) when ``k > 1``.
    """
    x3, y3 = _check_clouds(x, "x", any_dim=True), _check_clouds(y, "y", any_dim=True)
    if x3.shape[-1] != y3.shape[-1]:
        raise ValueError(f"`x` and `y` need the same dimension D, got {tuple(x.shape)} and {tuple(y.shape)}")
    if x3.shape[0] != y3.shape[0]:
        raise ValueError(f"`x` and `y` need the same batch size, got {tuple(x.shape)} and {tuple(y.shape)}")
    if not 1 <= int(k) <= y3.shape[1]:
        raise ValueError(f"`k` must be between 1 and the {y3.shape[1]} points of `y`, got {k}")
    b, n, m = x3.shape[0], x3.shape[1], y3.shape[1]
    if _knn_backend(backend, x3.device) == "pytorch3d":
        from pytorch3d.ops import knn_points

        knn = knn_points(x3, y3, K=k)
        d2, idx = knn.dists, knn.idx  # (B, N, k)
    else:
        step = chunk or max(1, _KNN_BUDGET // (b * m))
        with torch.no_grad():
            if k == 1:  # the y minimising |y|^2 - 2 x.y: |x - y|^2 less |x|^2, a constant along each row
                y_t, y_sq = y3.transpose(1, 2), y3.pow(2).sum(-1)[:, None]  # (B, D, M), (B, 1, M)
                idx = torch.cat([torch.baddbmm(y_sq, q, y_t, alpha=-2).min(-1, keepdim=True).indices
                                 for q in x3.split(step, dim=1)], 1)  # (B, N, 1)
            else:
                idx = torch.cat([torch.cdist(q, y3).topk(k, dim=-1, largest=False).indices
                                 for q in x3.split(step, dim=1)], 1)  # (B, N, k), nearest first
        d = y3.shape[-1]
        nearest = torch.gather(y3, 1, idx.reshape(b, n * k, 1).expand(-1, -1, d)).reshape(b, n, k, d)
        d2 = (x3[:, :, None] - nearest).pow(2).sum(-1)  # exact, differentiable in both clouds
    if k == 1:
        d2, idx = d2[..., 0], idx[..., 0]
    return (d2[0], idx[0]) if x.ndim == 2 and y.ndim == 2 else (d2, idx)


def chamfer_distance(x: torch.Tensor, y: torch.Tensor, backend: str = "auto") -> torch.Tensor:
    """Symmetric chamfer distance between point clouds, in the convention of the module docstring
    (squared distances, mean over points, the two directions summed). Its batch mean equals
    ``pytorch3d.loss.chamfer_distance(x, y)[0]`` with the default reductions.

    Args:
        x: (B, N, 3) float world points, or (N, 3) for one pair.
        y: (B, M, 3) float, or (M, 3); same batch size as ``x``.
        backend: see :func:`nearest_neighbors`.
    Returns:
        (B,) float chamfer distance of each pair, world units^2; a 0-d tensor for (N, 3) inputs.
    """
    _check_clouds(x, "x"), _check_clouds(y, "y")  # 3-D points (nearest_neighbors takes any D)
    dx, _ = nearest_neighbors(x, y, backend)
    dy, _ = nearest_neighbors(y, x, backend)
    return dx.mean(-1) + dy.mean(-1)


def colored_chamfer(pred_points: torch.Tensor, pred_colors: torch.Tensor, gt_points: torch.Tensor,
                    gt_colors: torch.Tensor, backend: str = "auto") -> Tuple[torch.Tensor, torch.Tensor]:
    """Chamfer distance on positions + L1 colour error between nearest neighbours.

    Args:
        pred_points, pred_colors: (B, N, 3) float, world units and RGB in [0, 1].
        gt_points, gt_colors: (B, M, 3) float.
        backend: see :func:`nearest_neighbors`.
    Returns:
        chamfer: () the batch mean of :func:`chamfer_distance`; color: () mean L1 colour error of
        each point against its nearest neighbour in the other cloud, the two directions averaged.
    """
    for name, t in (("pred_points", pred_points), ("pred_colors", pred_colors),
                    ("gt_points", gt_points), ("gt_colors", gt_colors)):
        if not torch.is_tensor(t) or t.ndim != 3 or t.shape[-1] != 3:
            raise ValueError(f"`{name}` must be (B, N, 3), got {tuple(t.shape) if torch.is_tensor(t) else t}")
    if pred_points.shape != pred_colors.shape or gt_points.shape != gt_colors.shape:
        raise ValueError(f"points and colours must match: pred {tuple(pred_points.shape)} vs "
                         f"{tuple(pred_colors.shape)}, gt {tuple(gt_points.shape)} vs {tuple(gt_colors.shape)}")
    d_pg, i_pg = nearest_neighbors(pred_points, gt_points, backend)  # (B, N)
    d_gp, i_gp = nearest_neighbors(gt_points, pred_points, backend)  # (B, M)
    chamfer = (d_pg.mean(1) + d_gp.mean(1)).mean()
    gt_at_pred = torch.gather(gt_colors, 1, i_pg[..., None].expand(-1, -1, 3))
    pred_at_gt = torch.gather(pred_colors, 1, i_gp[..., None].expand(-1, -1, 3))
    color = 0.5 * ((pred_colors - gt_at_pred).abs().mean() + (pred_at_gt - gt_colors).abs().mean())
    return chamfer, color


# --------------------------------------------------------------------------------- voxels
def voxel_bce(logits: torch.Tensor, target: torch.Tensor, pos_weight: float = None) -> torch.Tensor:
    """Binary cross-entropy between occupancy logits and a target grid, averaged over voxels.

    ``BCE = -mean(t log sigmoid(l) + (1 - t) log(1 - sigmoid(l)))``, computed stably from logits.

    Args:
        logits: (..., R, R, R) float, unnormalized occupancy scores.
        target: same shape, bool or float in [0, 1].
        pos_weight: optional weight on the occupied voxels (most of a grid is empty; a weight
            of (#empty / #occupied) balances the two).

    Returns:
        scalar tensor.
    """
    if not torch.is_tensor(logits) or not torch.is_tensor(target) or logits.shape != target.shape:
        shapes = [shape_of(t) for t in (logits, target)]
        raise ValueError(f"`logits` and `target` must be tensors of the same shape, got {shapes[0]} and {shapes[1]}")
    pw = None if pos_weight is None else torch.tensor(float(pos_weight), device=logits.device)
    return F.binary_cross_entropy_with_logits(logits, target.to(logits.dtype), pos_weight=pw)


# ---------------------------------------------------------------------------------- meshes
def _check_mesh(verts: torch.Tensor, faces: torch.Tensor, batched: bool = False):
    ok = torch.is_tensor(verts) and verts.shape[-1:] == (3,) and verts.ndim in ((2, 3) if batched else (2,))
    if not ok:
        raise ValueError(f"`verts` must be {'(V, 3) or (B, V, 3)' if batched else '(V, 3)'}, got {shape_of(verts)}")
    if not torch.is_tensor(faces) or faces.ndim != 2 or faces.shape[1] != 3:
        raise ValueError(f"`faces` must be (F, 3), got {shape_of(faces)}")
    if faces.numel() and (int(faces.min()) < 0 or int(faces.max()) >= verts.shape[-2]):
        raise ValueError(f"`faces` indexes vertices outside 0..{verts.shape[-2] - 1}")


def mesh_laplacian_smoothing(verts: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """Uniform Laplacian smoothing loss of one mesh, or of B meshes that share their faces.

    For each vertex, the offset from it to the mean of its edge neighbours,
    ``delta_i = (1 / deg_i) sum_{j in N(i)} v_j - v_i``; the loss is the mean over vertices of
    ``|delta_i|`` (not squared). A vertex on no edge contributes ``|v_i|``. For one mesh this
    equals ``pytorch3d.loss.mesh_laplacian_smoothing(Meshes([verts], [faces]), method="uniform")``.

    Args:
        verts: (V, 3) float, or (B, V, 3) for B meshes with the same ``faces``.
        faces: (F, 3) int64.
    Returns:
        () for (V, 3) input, (B,) for (B, V, 3); differentiable in ``verts``.
    """
    _check_mesh(verts, faces, batched=True)
    e = mesh_edges(faces)  # (E, 2)
    src, dst = torch.cat([e[:, 0], e[:, 1]]), torch.cat([e[:, 1], e[:, 0]])
    v = verts if verts.ndim == 3 else verts[None]  # (B, V, 3)
    ones = torch.ones_like(src, dtype=v.dtype)
    deg = torch.zeros(v.shape[1], dtype=v.dtype, device=v.device).index_add_(0, src, ones)
    nbr_sum = torch.zeros_like(v).index_add_(1, src, v[:, dst])
    mean_nbr = nbr_sum / deg.clamp(min=1)[:, None]  # 0 for a vertex on no edge
    loss = (mean_nbr - v).norm(dim=-1).mean(-1)  # (B,)
    return loss if verts.ndim == 3 else loss[0]


def mesh_edge_length(verts: torch.Tensor, faces: torch.Tensor, target_length: float = 0.0) -> torch.Tensor:
    """Mean over unique edges of ``(|v_i - v_j| - target_length)^2``: keeps triangles from
    stretching. Equals ``pytorch3d.loss.mesh_edge_loss`` for one mesh.

    Args:
        verts: (V, 3) float. faces: (F, 3) int64. target_length: preferred edge length.
    Returns:
        scalar tensor.
    """
    _check_mesh(verts, faces)
    e = mesh_edges(faces)
    return ((verts[e[:, 0]] - verts[e[:, 1]]).norm(dim=1) - target_length).pow(2).mean()


def mesh_normal_consistency(verts: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """Mean over interior edges of ``1 - cos`` of the angle between the two faces' normals:
    0 for a flat sheet, larger for creases. An edge shared by k > 2 faces counts k - 1 pairs
    (faces in index order); boundary edges are skipped.

    Args:
        verts: (V, 3) float. faces: (F, 3) int64.
    Returns:
        scalar tensor (0 when the mesh has no interior edge).
    """
    _check_mesh(verts, faces)
    f = faces.long()
    a, b, c = verts[f].unbind(1)
    n = F.normalize(torch.linalg.cross(b - a, c - a), dim=1)  # (F, 3)
    _, face_edges = mesh_edges(f, return_face_edges=True)  # (F, 3) edge id of each side
    edge_id = face_edges.reshape(-1)
    face_id = torch.arange(f.shape[0], device=f.device).repeat_interleave(3)
    order = edge_id.argsort(stable=True)  # faces of one edge stay in index order
    eid, fid = edge_id[order], face_id[order]
    same = eid[1:] == eid[:-1]  # consecutive entries on the same edge: adjacent face pairs
    if not same.any():
        return verts.sum() * 0.0
    f0, f1 = fid[:-1][same], fid[1:][same]
    return (1 - (n[f0] * n[f1]).sum(1)).mean()


# --------------------------------------------------------------------------------- SDFs
def _check_grad(grad: torch.Tensor, fn: str) -> None:
    if not torch.is_tensor(grad) or grad.shape[-1:] != (3,):
        got = shape_of(grad)
        raise ValueError(f"{fn}: `grad` must be (..., 3) SDF gradients, got {got}")


def eikonal_loss(grad: torch.Tensor) -> torch.Tensor:
    """Eikonal regulariser ``mean((|grad f| - 1)^2)`` (IGR, Gropp et al., 2020): a true SDF has
    unit gradient norm. ``grad``: (..., 3) from ``lib.render.surface.sdf_gradient(...,
    create_graph=True)``. Returns a 0-d tensor."""
    _check_grad(grad, "eikonal_loss")
    return (grad.norm(dim=-1) - 1.0).pow(2).mean()


def eikonal_error(grad: torch.Tensor) -> torch.Tensor:
    """``mean(| |grad f| - 1 |)``: the eikonal violation in plain units (0 for a true SDF).
    ``grad``: (..., 3). Returns a 0-d tensor."""
    _check_grad(grad, "eikonal_error")
    return (grad.norm(dim=-1) - 1.0).abs().mean()


# ------------------------------------------------------------------------------- VAE-GAN
def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)), summed over the latent, mean over the batch:
    mu, logvar (B, L) float -> () float."""
    return (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(-1)).mean()


def generator_adv_loss(d_fake: torch.Tensor) -> torch.Tensor:
    """Non-saturating generator loss ``-log D(G(z)) = softplus(-logit)``: (B,) logits -> ()."""
    return F.softplus(-d_fake).mean()


def discriminator_loss(d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
    """``-log D(x) - log(1 - D(G(z))) = softplus(-real) + softplus(fake)``: (B,), (B,) logits -> ()."""
    return F.softplus(-d_real).mean() + F.softplus(d_fake).mean()


# ------------------------------------------------------------------------- PointNet T-Net
def orthogonality_penalty(transform: torch.Tensor) -> torch.Tensor:
    """PointNet's feature-transform regulariser ``||I - A A^T||_F^2``, mean over the batch: it is
    0 exactly when every (d, d) matrix A is orthogonal (a rotation or reflection, which loses no
    information). transform: (B, d, d) float -> () float."""
    if transform.ndim != 3 or transform.shape[1] != transform.shape[2]:
        raise ValueError(f"orthogonality_penalty: `transform` must be (B, d, d), got {tuple(transform.shape)}")
    eye = torch.eye(transform.shape[1], device=transform.device, dtype=transform.dtype)
    return (eye - transform @ transform.transpose(1, 2)).pow(2).sum((1, 2)).mean()


# ---------------------------------------------------------------------- NeuralLift depth ranking
def depth_ranking_loss(pred_distance: torch.Tensor, ref_inv_depth: torch.Tensor, n_pairs: int,
                       generator: torch.Generator, margin: float = 1e-4,
                       min_gap: float = 0.01) -> torch.Tensor:
    """NeuralLift-360's depth ranking loss: the rendered distances must order pixels as the monocular
    estimate does, whatever the estimate's scale and shift.

    ``n_pairs`` pairs (i, j) of the given pixels are drawn uniformly (with replacement, so memory is
    O(n_pairs), not O(P^2)); pairs whose reference values differ by less than ``min_gap`` (no
    reliable order) are dropped. For a pair where the estimate says i is nearer (larger inverse
    depth), the loss is ``max(0, margin + z_i - z_j)`` on the rendered distances z: zero once i is
    rendered in front of j by ``margin``. Mean over the kept pairs (0 when none is kept).

    Args:
        pred_distance: (P,) how far each foreground pixel's surface is rendered (the volume
            renderer's expected ray length; camera z works alike), differentiable.
        ref_inv_depth: (P,) the estimate at the same pixels, larger = nearer (relative inverse depth).
        n_pairs: pairs per call. generator: a CPU ``torch.Generator`` for the pairs.
    Returns: () float.
    """
    if pred_distance.ndim != 1 or pred_distance.shape != ref_inv_depth.shape:
        raise ValueError(f"depth_ranking_loss: `pred_distance` and `ref_inv_depth` must both be (P,), got "
                         f"{tuple(pred_distance.shape)} and {tuple(ref_inv_depth.shape)}")
    if pred_distance.shape[0] < 2 or n_pairs < 1:
        raise ValueError(f"depth_ranking_loss: need at least 2 pixels and n_pairs >= 1, got "
                         f"{pred_distance.shape[0]} pixels, n_pairs={n_pairs}")
    i, j = torch.randint(0, pred_distance.shape[0], (2, int(n_pairs)), generator=generator).to(pred_distance.device)
    gap = ref_inv_depth[i] - ref_inv_depth[j]  # > 0: the estimate says i is nearer
    keep = gap.abs() >= min_gap
    if not bool(keep.any()):
        return pred_distance.sum() * 0.0
    sign = gap[keep].sign()
    return F.relu(margin + sign * (pred_distance[i[keep]] - pred_distance[j[keep]])).mean()


def feature_cosine_loss(features: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """``1 - cos(f, f_ref)``, mean over the batch: NeuralLift-360's CLIP loss between novel views'
    image embeddings (B, D) and the reference image's (D,) or (1, D). () float, in [0, 2]."""
    if features.ndim != 2 or reference.reshape(-1).shape[0] != features.shape[1]:
        raise ValueError(f"feature_cosine_loss: need features (B, D) and a reference (D,), got "
                         f"{tuple(features.shape)} and {tuple(reference.shape)}")
    return (1 - F.cosine_similarity(features, reference.reshape(1, -1).expand_as(features), dim=-1)).mean()
