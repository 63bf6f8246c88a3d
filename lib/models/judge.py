"""The offline judge: a small CNN that names the class and the view word of a render (notebook 07).

Score distillation is scored offline by asking "does this image look like a chair?" and "is this
a side view?". :class:`Judge` answers both from one image: a three-layer convolutional trunk
(GroupNorm, ReLU, two 2x max-pools, then a global max-pool) gives a (B, 2w) feature, and two
linear heads give class logits over ``JudgeConfig.classes`` (``lib.data.shapes.CATEGORIES``) and view
logits over ``JudgeConfig.views`` (``lib.prompts.VIEW_WORDS``). Training and evaluation are pure
functions in :mod:`lib.methods.judge`; the committed weights are ``assets/judge`` (made by
``python -m tools.train_judge``).

Images are (B, 3, H, W) float in [-1, 1] with white = 1, the prior's convention (``2 rgb - 1``),
H = W = ``JudgeConfig.image_size``.

A saved judge is one folder: ``config.json`` (the :class:`JudgeConfig`) + ``model.safetensors``.

Example:
    >>> judge = Judge(JudgeConfig(image_size=16, classes=("chair", "car"), width=8), seed=0)
    >>> class_logits, view_logits = judge(torch.zeros(2, 3, 16, 16))
    >>> tuple(class_logits.shape), tuple(view_logits.shape)
    ((2, 2), (2, 4))
    >>> sorted(judge.predict(torch.zeros(1, 3, 16, 16)))
    ['class_idx', 'class_probs', 'view_idx', 'view_probs']
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from lib.data.shapes import CATEGORIES
from lib.fileio import read_module_folder, save_module_folder
from lib.prompts import VIEW_WORDS
from lib.models.seeding import seeded

RANGE_TOLERANCE = 1e-3  # images may exceed [-1, 1] by this much (float noise of 2 rgb - 1)


@dataclass
class JudgeConfig:
    """Settings of a :class:`Judge`.

    Attributes:
        image_size: H = W of the input images, pixels (the prior's 32 by default).
        classes: class names, the order of the class logits (default ``lib.data.shapes.CATEGORIES``).
        views: view words, the order of the view logits (default ``lib.prompts.VIEW_WORDS``).
        width: w, channels of the first conv layer; the trunk has w, 2w, 2w channels and the
            feature is (B, 2w). Must be a multiple of 8 (GroupNorm with 8 groups).
    """
    image_size: int = 32
    classes: tuple = CATEGORIES
    views: tuple = VIEW_WORDS
    width: int = 32

    def __post_init__(self):
        self.classes = tuple(str(c) for c in self.classes)
        self.views = tuple(str(v) for v in self.views)
        if self.image_size < 4:
            raise ValueError(f"JudgeConfig: `image_size` must be >= 4, got {self.image_size}")
        if self.width < 8 or self.width % 8:
            raise ValueError(f"JudgeConfig: `width` must be a positive multiple of 8, got {self.width}")
        for name, names in (("classes", self.classes), ("views", self.views)):
            if len(names) < 2 or len(set(names)) != len(names):
                raise ValueError(f"JudgeConfig: `{name}` must hold >= 2 distinct names, got {names}")


def _block(c_in: int, c_out: int) -> list:
    return [nn.Conv2d(c_in, c_out, 3, padding=1), nn.GroupNorm(8, c_out), nn.ReLU()]


class Judge(nn.Module):
    """Class + view-word classifier: images (B, 3, H, W) in [-1, 1] -> (class logits, view logits).

    Args:
        config: a :class:`JudgeConfig` (default: 32 px, the prior's classes and view words, w=32).
        seed: if given, the initial weights come from it (the global RNG is left untouched).
    """

    @seeded
    def __init__(self, config: JudgeConfig | None = None):
        super().__init__()
        self.config = config if config is not None else JudgeConfig()
        w = self.config.width
        self.trunk = nn.Sequential(
            *_block(3, w), nn.MaxPool2d(2),
            *_block(w, 2 * w), nn.MaxPool2d(2),
            *_block(2 * w, 2 * w), nn.AdaptiveMaxPool2d(1), nn.Flatten())
        self.class_head = nn.Linear(2 * w, len(self.config.classes))
        self.view_head = nn.Linear(2 * w, len(self.config.views))

    def check_images(self, x: torch.Tensor) -> None:
        """ValueError unless ``x`` is (B, 3, S, S) float with S = image_size and values in [-1, 1]."""
        S = self.config.image_size
        if not torch.is_tensor(x) or not x.is_floating_point():
            raise ValueError(f"Judge: `images` must be a float tensor (B, 3, {S}, {S}), got "
                             f"{getattr(x, 'dtype', type(x).__name__)}")
        if x.ndim != 4 or x.shape[1] != 3 or tuple(x.shape[2:]) != (S, S):
            raise ValueError(f"Judge: `images` must be (B, 3, {S}, {S}), got {tuple(x.shape)}")
        if x.numel() and (x.min() < -1 - RANGE_TOLERANCE or x.max() > 1 + RANGE_TOLERANCE):
            raise ValueError(f"Judge: images must be in [-1, 1] (the prior's convention: 2 rgb - 1), got "
                             f"values in [{x.min().item():.3g}, {x.max().item():.3g}]")

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """images (B, 3, S, S) in [-1, 1] -> features (B, 2w) float32 (global max over positions)."""
        self.check_images(x)
        return self.trunk(x)

    def forward(self, x: torch.Tensor):
        """images (B, 3, S, S) in [-1, 1] -> (class_logits (B, C), view_logits (B, V)) float32."""
        f = self.features(x)
        return self.class_head(f), self.view_head(f)

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> dict:
        """Eval-mode prediction without gradients (the module's train/eval mode is restored).

        Returns:
            dict: class_probs (B, C), view_probs (B, V) float32 softmax; class_idx (B,), view_idx
            (B,) int64 argmax indices into ``config.classes`` / ``config.views``.
        """
        was_training = self.training
        self.eval()
        try:
            class_logits, view_logits = self(x)
        finally:
            self.train(was_training)
        class_probs, view_probs = class_logits.softmax(-1), view_logits.softmax(-1)
        return {"class_probs": class_probs, "view_probs": view_probs,
                "class_idx": class_probs.argmax(-1), "view_idx": view_probs.argmax(-1)}

    def save_pretrained(self, folder) -> None:
        """Write ``config.json`` and ``model.safetensors`` (float32, no pickle) into ``folder``."""
        cfg = asdict(self.config)
        cfg["classes"], cfg["views"] = list(cfg["classes"]), list(cfg["views"])
        save_module_folder(self, cfg, folder)

    @classmethod
    def from_pretrained(cls, folder, device="cpu") -> "Judge":
        """A saved judge (``save_pretrained``'s folder), in eval mode on ``device``."""
        cfg, state = read_module_folder(folder, "Judge.from_pretrained",
                                        "(train one with `python -m tools.train_judge --out <folder>`)")
        model = cls(JudgeConfig(**cfg), seed=0)  # seeded only to leave the global stream alone: weights load next
        model.load_state_dict(state)
        return model.to(device).eval()
