"""The offline prior's text side: a word tokenizer, a tiny text encoder, and the prior's loader.

The prior (``lib.methods.offline_prior``, trained by ``tools/train_prior.py``) is a diffusers
``UNet2DConditionModel`` + ``DDPMScheduler`` conditioned on short prompts ("a chair, side view")
through :class:`TinyTextEncoder`, which plays the role of a CLIP text encoder: token ids (B, L) in,
hidden states (B, L, D) out, fed to the UNet as ``encoder_hidden_states``. No hub tokenizer: the
vocabulary is a fixed word list (``lib.methods.offline_prior.prior_vocabulary``).

A saved prior is one folder::

    <folder>/unet/          UNet2DConditionModel.save_pretrained
    <folder>/scheduler/     DDPMScheduler.save_pretrained
    <folder>/text_encoder/  config.json + model.safetensors  (TinyTextEncoder.save_pretrained)
    <folder>/tokenizer/     tokenizer.json: vocabulary + max_length (WordTokenizer.save_pretrained)

Example:
    >>> tok = WordTokenizer(["a", "chair", "side", "view"], max_length=6)
    >>> tok(["a chair, side view!", "a Vase"]).tolist()
    [[2, 3, 4, 5, 0, 0], [2, 1, 0, 0, 0, 0]]
    >>> enc = TinyTextEncoder(len(tok), max_length=6, dim=16, seed=0)
    >>> tuple(enc(tok(["a chair"])).shape)
    (1, 6, 16)
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import torch
from torch import nn

from lib.fileio import read_module_folder, save_module_folder
from lib.models.seeding import seeded

PAD, UNK = "<pad>", "<unk>"  # ids 0 and 1; vocabulary words follow from id 2
_NON_WORD = re.compile(r"[^a-z0-9]+")


def prompt_words(prompt: str) -> list[str]:
    """Lowercase words of ``prompt``, punctuation stripped ("A chair, side-view" -> a chair side view)."""
    return _NON_WORD.sub(" ", prompt.lower()).split()


class WordTokenizer:
    """Whitespace word tokenizer over a fixed vocabulary: pad id 0, unknown id 1, words from 2.

    Args:
        vocabulary: the words (lowercase letters/digits, unique). max_length: L, the length of every
            encoded sequence (prompts are padded with ``pad_id``; longer prompts are an error).
    """

    def __init__(self, vocabulary, max_length: int = 8):
        vocabulary = list(vocabulary)
        bad = [w for w in vocabulary if prompt_words(w) != [w]]
        if bad:
            raise ValueError(f"WordTokenizer: `vocabulary` must hold lowercase single words, got {bad}")
        if len(set(vocabulary)) != len(vocabulary):
            raise ValueError("WordTokenizer: `vocabulary` has repeated words")
        if max_length < 1:
            raise ValueError(f"WordTokenizer: `max_length` must be >= 1, got {max_length}")
        self.vocabulary = vocabulary
        self.max_length = int(max_length)
        self.ids = {w: i + 2 for i, w in enumerate(vocabulary)}
        self.pad_id, self.unk_id = 0, 1

    def __len__(self) -> int:
        """Number of ids (vocabulary + pad + unk)."""
        return len(self.vocabulary) + 2

    def encode(self, prompt: str) -> list[int]:
        """The ``max_length`` ids of one prompt (unknown words -> ``unk_id``, then padding)."""
        words = prompt_words(prompt)
        if not words:
            raise ValueError(f"WordTokenizer: prompt must hold at least one word, got {prompt!r} "
                             "(use unconditional() for the empty prompt)")
        if len(words) > self.max_length:
            raise ValueError(f"WordTokenizer: prompt must have at most max_length={self.max_length} words, "
                             f"got {len(words)}: {prompt!r}")
        ids = [self.ids.get(w, self.unk_id) for w in words]
        return ids + [self.pad_id] * (self.max_length - len(ids))

    def __call__(self, prompts) -> torch.Tensor:
        """(B, L) int64 ids of a prompt or a list of prompts."""
        if isinstance(prompts, str):
            prompts = [prompts]
        return torch.tensor([self.encode(p) for p in prompts], dtype=torch.long).reshape(-1, self.max_length)

    def unconditional(self, batch: int = 1) -> torch.Tensor:
        """(B, L) int64 all-pad ids: the empty prompt of classifier-free guidance."""
        return torch.full((batch, self.max_length), self.pad_id, dtype=torch.long)

    def save_pretrained(self, folder) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "tokenizer.json").write_text(json.dumps(
            {"vocabulary": self.vocabulary, "max_length": self.max_length}, indent=1) + "\n")

    @classmethod
    def from_pretrained(cls, folder) -> "WordTokenizer":
        path = Path(folder) / "tokenizer.json"
        if not path.is_file():
            raise FileNotFoundError(f"WordTokenizer.from_pretrained: no {path}")
        cfg = json.loads(path.read_text())
        return cls(cfg["vocabulary"], cfg["max_length"])


class TinyTextEncoder(nn.Module):
    """Word embeddings + learned positions (+ optional Transformer layers): ids (B, L) -> (B, L, D).

    Args:
        vocab_size: number of ids (``len(tokenizer)``). max_length: L. dim: D, the UNet's
            ``cross_attention_dim``. n_layers: TransformerEncoder layers (0 = embeddings only).
        n_heads: attention heads (must divide ``dim``). seed: if given, the initial weights come
            from ``torch.Generator().manual_seed(seed)`` (global RNG untouched).
    """

    @seeded
    def __init__(self, vocab_size: int, max_length: int = 8, dim: int = 64, n_layers: int = 1,
                 n_heads: int = 4):
        super().__init__()
        if dim % n_heads:
            raise ValueError(f"TinyTextEncoder: `n_heads` must divide `dim`, got dim={dim}, n_heads={n_heads}")
        self.config = {"vocab_size": int(vocab_size), "max_length": int(max_length), "dim": int(dim),
                       "n_layers": int(n_layers), "n_heads": int(n_heads)}
        self.token = nn.Embedding(vocab_size, dim)
        self.position = nn.Parameter(0.02 * torch.randn(max_length, dim))
        self.layers = nn.ModuleList(
            [nn.TransformerEncoderLayer(dim, n_heads, 2 * dim, 0.0, batch_first=True, norm_first=True)
             for _ in range(n_layers)]) if n_layers else nn.ModuleList()
        self.norm = nn.LayerNorm(dim)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """ids (B, L) int64 -> hidden states (B, L, D) float32."""
        L = self.config["max_length"]
        if ids.ndim != 2 or ids.shape[1] != L:
            raise ValueError(f"TinyTextEncoder: `ids` must be (B, {L}), got {tuple(ids.shape)}")
        x = self.token(ids) + self.position
        for layer in self.layers:
            x = layer(x)
        return self.norm(x)

    def save_pretrained(self, folder) -> None:
        """Write ``config.json`` and ``model.safetensors`` (no pickle) into ``folder``."""
        save_module_folder(self, self.config, folder)

    @classmethod
    def from_pretrained(cls, folder, device="cpu") -> "TinyTextEncoder":
        cfg, state = read_module_folder(folder, "TinyTextEncoder.from_pretrained")
        model = cls(**cfg, seed=0)  # seeded only to leave the global stream alone: weights load next
        model.load_state_dict(state)
        return model.to(device).eval()


PRIOR_PARTS = ("unet", "scheduler", "text_encoder", "tokenizer")


def load_prior(folder, device="cpu"):
    """Load a saved prior (module docstring layout): ``(unet, scheduler, tokenizer, text_encoder)``.

    The UNet and text encoder are in eval mode on ``device``. Local files only (no hub access).
    """
    from diffusers import DDPMScheduler, UNet2DConditionModel
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"load_prior: `folder` {folder} does not exist "
                                "(train one with `python -m tools.train_prior --out <folder>`)")
    missing = [p for p in PRIOR_PARTS if not (folder / p).is_dir()]
    if missing:
        raise FileNotFoundError(f"load_prior: {folder} lacks {missing}; expected sub-folders {list(PRIOR_PARTS)}")
    unet = UNet2DConditionModel.from_pretrained(folder / "unet", local_files_only=True,
                                                low_cpu_mem_usage=False).to(device).eval()
    scheduler = DDPMScheduler.from_pretrained(folder / "scheduler", local_files_only=True)
    tokenizer = WordTokenizer.from_pretrained(folder / "tokenizer")
    text_encoder = TinyTextEncoder.from_pretrained(folder / "text_encoder", device)
    return unet, scheduler, tokenizer, text_encoder
