"""The offline judge's data, training and scores (pure functions; the model is ``lib.models.judge``).

Notebook 07 scores score-distillation results offline with :class:`lib.models.judge.Judge`, a small
CNN that names the class ("chair", ...) and the view word ("front", "side", "back", "overhead") of
a render. Its data are the prior's renders (``lib.methods.offline_prior.prior_dataset``) with integer labels parsed
from their prompts ("a chair, side view" -> class "chair", view "side"); it is trained with
augmentations that SDS results need (mirroring, blur, noise), and scored by accuracy and by the
"judge's confidence", the probability of the prompted class.

Images are (N, 3, H, W) float32 in [-1, 1] with white = 1 (the prior's convention).

Example:
    >>> from lib.models.judge import Judge, JudgeConfig
    >>> images, class_labels, view_labels = judge_dataset(4, 16, seed=0, classes=("chair", "car"))
    >>> tuple(images.shape), class_labels.tolist(), view_labels.tolist()
    ((8, 3, 16, 16), [0, 0, 0, 0, 1, 1, 1, 1], [0, 1, 2, 3, 0, 1, 2, 3])
    >>> judge = Judge(JudgeConfig(image_size=16, classes=("chair", "car"), width=8), seed=0)
    >>> tuple(class_confidence(judge, images, "car").shape)
    (8,)
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from lib.data.shapes import CATEGORIES
from lib.fileio import ASSETS_DIR
from lib.images import to_nchw
from lib.methods.offline_prior import prior_dataset
from lib.prompts import VIEW_WORDS, parse_view_prompt
from lib.train import RunningLog, fit

JUDGE_DIR = ASSETS_DIR / "judge"  # the committed judge (tools/train_judge.py; sha256 in assets/MANIFEST)


def parse_prompt(prompt: str) -> tuple[str, str]:
    """``"a chair, side view"`` -> ``("chair", "side")``: the class after the article and the view word
    (``lib.prompts.parse_view_prompt``). ValueError if ``prompt`` does not have that form."""
    try:
        subject, view = parse_view_prompt(prompt)
    except ValueError:
        subject, view = "", None
    words = subject.split()
    if len(words) != 2 or words[0] not in ("a", "an") or view is None:
        raise ValueError(f"parse_prompt: `prompt` must look like 'a <class>, <view> view', got {prompt!r}")
    return words[1], view


def judge_dataset(n_per_class: int, image_size: int = 32, seed: int = 0, classes=CATEGORIES,
                  views=VIEW_WORDS):
    """The prior's renders (``lib.methods.offline_prior.prior_dataset``) with integer class and view labels.

    Args:
        n_per_class: images per class (4 views per object, balanced over view words).
        image_size: H = W, pixels. seed: seeds shapes, palettes and cameras.
        classes: class names (their order = the class labels). views: view words (label order).
    Returns:
        images (N, 3, H, W) float32 in [-1, 1], class-major; class_labels (N,) int64 indices into
        ``classes``; view_labels (N,) int64 indices into ``views``.
    """
    classes, views = tuple(classes), tuple(views)
    images, prompts = prior_dataset(n_per_class, image_size, seed, classes)
    parsed = [parse_prompt(p) for p in prompts]
    unknown = sorted({v for _, v in parsed if v not in views})
    if unknown:
        raise ValueError(f"judge_dataset: `views` must hold every view word of the renders, "
                         f"expected {sorted(set(VIEW_WORDS))}, got {views} (missing {unknown})")
    class_labels = torch.tensor([classes.index(c) for c, _ in parsed], dtype=torch.long)
    view_labels = torch.tensor([views.index(v) for _, v in parsed], dtype=torch.long)
    return images, class_labels, view_labels


def _check_labeled(images: torch.Tensor, class_labels: torch.Tensor, view_labels: torch.Tensor, fn: str):
    if images.ndim != 4:
        raise ValueError(f"{fn}: `images` must be (N, 3, H, W), got {tuple(images.shape)}")
    for name, labels in (("class_labels", class_labels), ("view_labels", view_labels)):
        if tuple(labels.shape) != (len(images),):
            raise ValueError(f"{fn}: `{name}` must be ({len(images)},), got {tuple(labels.shape)}")


def augment(x: torch.Tensor, generator: torch.Generator, noise: float = 0.05) -> torch.Tensor:
    """The judge's training augmentation of images (B, 3, H, W) in [-1, 1] -> same shape and range.

    Each image is mirrored left-right with probability 1/2 (a mirrored side view is a side view),
    blurred with a 3x3 box filter (replicate padding) with probability 1/2 (SDS results are
    blurry), and gets Gaussian noise of std ``noise``; the result is clamped to [-1, 1]. All draws
    come from ``generator`` (a CPU generator; masks and noise are moved to ``x``'s device).
    """
    B = x.shape[0]
    mirror = (torch.rand(B, generator=generator) < 0.5).to(x.device)[:, None, None, None]
    blur = (torch.rand(B, generator=generator) < 0.5).to(x.device)[:, None, None, None]
    x = torch.where(mirror, x.flip(-1), x)
    blurred = F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    x = torch.where(blur, blurred, x)
    x = x + noise * torch.randn(x.shape, generator=generator).to(x.device)
    return x.clamp(-1.0, 1.0)


def train_judge(judge, images: torch.Tensor, class_labels: torch.Tensor, view_labels: torch.Tensor,
                steps: int = 600, batch: int = 64, lr: float = 2e-3, seed: int = 0, log=print,
                log_every: int = 100) -> list[dict]:
    """Train ``judge`` in place through ``lib.train.fit`` (no checkpoint; seconds on a CPU).

    Each step draws ``batch`` images with replacement from ``torch.Generator().manual_seed(seed)``,
    augments them (:func:`augment`) and takes an Adam step on
    ``CE(class_logits, class) + CE(view_logits, view)``.

    Args:
        judge: a :class:`lib.models.judge.Judge`. images: (N, 3, S, S) float32 in [-1, 1] on the
            judge's device. class_labels, view_labels: (N,) int64 indices into the judge's
            ``config.classes`` / ``config.views``.
        log: called with one line every ``log_every`` steps and at the end (None: silent).
    Returns:
        history: ``lib.train.fit``'s, one dict per step: step, loss, class_acc, view_acc (of the batch).
    """
    _check_labeled(images, class_labels, view_labels, "train_judge")
    judge.check_images(images)
    if steps < 1 or batch < 1:
        raise ValueError(f"train_judge: `steps` and `batch` must be >= 1, got {steps}, {batch}")
    n_classes, n_views = len(judge.config.classes), len(judge.config.views)
    if class_labels.min() < 0 or class_labels.max() >= n_classes:
        raise ValueError(f"train_judge: `class_labels` must be in [0, {n_classes}), got "
                         f"[{class_labels.min().item()}, {class_labels.max().item()}]")
    if view_labels.min() < 0 or view_labels.max() >= n_views:
        raise ValueError(f"train_judge: `view_labels` must be in [0, {n_views}), got "
                         f"[{view_labels.min().item()}, {view_labels.max().item()}]")
    gen = torch.Generator().manual_seed(seed)
    class_labels, view_labels = class_labels.to(images.device), view_labels.to(images.device)
    opt = torch.optim.Adam(judge.parameters(), lr=lr)
    judge.train()
    running = RunningLog(steps, log_every, log, {"loss": ".4f", "class_acc": ".3f", "view_acc": ".3f"})

    def step_fn(step: int) -> dict:
        idx = torch.randint(0, len(images), (batch,), generator=gen).to(images.device)
        class_logits, view_logits = judge(augment(images[idx], gen))
        loss = F.cross_entropy(class_logits, class_labels[idx]) + F.cross_entropy(view_logits, view_labels[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        row = {"loss": loss.item(),
               "class_acc": (class_logits.argmax(-1) == class_labels[idx]).float().mean().item(),
               "view_acc": (view_logits.argmax(-1) == view_labels[idx]).float().mean().item()}
        running(step, row)  # class_acc, view_acc: of the (augmented) batch
        return row

    history = fit(step_fn, steps, {"judge": judge, "optimizer": opt, "generator": gen}, desc="judge",
                  progress=False)
    judge.eval()
    return history


def judge_accuracy(judge, images: torch.Tensor, class_labels: torch.Tensor, view_labels: torch.Tensor) -> dict:
    """Accuracy of ``judge`` (eval mode, no grad) on labelled images.

    Args:
        images: (N, 3, S, S) float in [-1, 1]. class_labels, view_labels: (N,) int64.
    Returns:
        dict: class_acc, view_acc (floats in [0, 1]); per_class_view_acc {class name: view accuracy
        on the images of that class} for the classes present in ``class_labels``.
    """
    _check_labeled(images, class_labels, view_labels, "judge_accuracy")
    pred = judge.predict(images)
    class_labels, view_labels = class_labels.to(images.device), view_labels.to(images.device)
    class_ok = (pred["class_idx"] == class_labels).float()
    view_ok = (pred["view_idx"] == view_labels).float()
    per_class = {name: view_ok[class_labels == i].mean().item()
                 for i, name in enumerate(judge.config.classes) if (class_labels == i).any()}
    return {"class_acc": class_ok.mean().item(), "view_acc": view_ok.mean().item(),
            "per_class_view_acc": per_class}


def class_confidence(judge, images: torch.Tensor, target_class) -> torch.Tensor:
    """The judge's confidence: probability of the target class for each image (eval mode, no grad).

    Args:
        images: (B, 3, S, S) float in [-1, 1]. target_class: one class name for all images, or a
            list of B names (each among ``judge.config.classes``).
    Returns:
        (B,) float32 softmax probability of each image's target class, on ``images``' device.
    """
    classes = judge.config.classes
    targets = [target_class] * len(images) if isinstance(target_class, str) else list(target_class)
    if len(targets) != len(images):
        raise ValueError(f"class_confidence: `target_class` must be one name or {len(images)} names, "
                         f"got {len(targets)}")
    unknown = sorted({t for t in targets if t not in classes})
    if unknown:
        raise ValueError(f"class_confidence: `target_class` must be among the judge's classes {classes}, "
                         f"got {unknown}")
    idx = torch.tensor([classes.index(t) for t in targets], dtype=torch.long, device=images.device)
    probs = judge.predict(images)["class_probs"]
    return probs.gather(1, idx[:, None])[:, 0]


def to_judge_space(judge, images01: torch.Tensor, name: str = "images") -> torch.Tensor:
    """Renders (B, H, W, 3) in [0, 1] of any size -> the judge's input: resized to its size, channels
    first (``lib.images.to_nchw``), ``2 x - 1``, on its device. Differentiable."""
    x = to_nchw(images01.float(), judge.config.image_size, name)
    return 2 * x.to(next(judge.parameters()).device) - 1


def judge_renders(judge, images01: torch.Tensor) -> dict:
    """:meth:`lib.models.judge.Judge.predict` of renders (B, H, W, 3) in [0, 1] of any size
    (:func:`to_judge_space`)."""
    return judge.predict(to_judge_space(judge, images01, "judge_renders: images"))


def judge_encoder(judge):
    """``encode(images) -> features``: renders (B, H, W, 3) in [0, 1] of any size -> the judge's image
    features (B, D) (:meth:`lib.models.judge.Judge.features` of :func:`to_judge_space`), differentiable:
    the offline stand-in for ``lib.pretrained.clip.load_clip_encoder``'s encoder (notebook 09)."""
    def encode(images: torch.Tensor) -> torch.Tensor:
        return judge.features(to_judge_space(judge, images, "judge_encoder: images"))
    return encode
