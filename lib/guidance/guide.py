"""One interface to "a diffusion model that guides": the course's offline prior or Stable Diffusion.

Score distillation needs four things from a model, and :class:`Guide` holds exactly those, so the
notebooks' optimisation code never asks which model it has:

- ``noise_pred_fn(x_t, t, states) -> eps_hat`` for :func:`lib.guidance.sds.sds_loss`;
- ``embed``: a :class:`TextEmbeddingCache` (prompt list -> (B, L, D); "" is
  the unconditional prompt);
- ``alphas_cumprod`` (N,) of its noise schedule;
- the way between images and the model's space: ``to_model(images)`` takes renders (B, H, W, 3)
  in [0, 1] (any H = W; channels last like every image in lib) to the model's input (the offline prior: resized to its size, then
  ``2 x - 1``; Stable Diffusion: resized to 512 and VAE-encoded, differentiably), and
  ``from_model(x)`` goes back to pictures (B, H, W, 3) in [0, 1] (for x0-predictions and optimised
  latents). Model space is channels first, (B, C, h, w): the guidance edge (``lib.images.to_nchw``).

``model_shape`` is the (C, h, w) of one sample in model space (3 x 32 x 32 for the offline prior,
4 x 64 x 64 latents for Stable Diffusion 1.5 at 512 px); optimising an image "directly" means
optimising a tensor of that shape.

Build one with :func:`lib.guidance.load.load_guide`, or from loaded parts with :func:`lib.guidance.prior.prior_guide` (offline)
or :func:`lib.guidance.stable_diffusion.sd_guide` (Colab).
"""
from __future__ import annotations

import gc
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import torch

from lib.guidance.sds import sds_loss


@dataclass
class Guide:
    """See the module docstring. ``name`` is for printing."""

    name: str
    noise_pred_fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
    embed: Callable
    alphas_cumprod: torch.Tensor
    to_model: Callable[[torch.Tensor], torch.Tensor]
    from_model: Callable[[torch.Tensor], torch.Tensor]
    model_shape: Tuple[int, int, int]
    image_size: int

    def sds(self, x: torch.Tensor, prompts: Sequence[str], t: torch.Tensor, guidance_scale,
            generator: Optional[torch.Generator], model_space: bool = False) -> Tuple[torch.Tensor, dict]:
        """Score distillation through this guide, the one way every method does it: renders ``x``
        (B, H, W, 3) in [0, 1] go through ``to_model`` (or ``x`` is already in model space, (B,
        *model_shape), with ``model_space``), then :func:`lib.guidance.sds.sds_loss` with classifier-free
        guidance against the empty prompt, at timesteps ``t`` (B,), noise from ``generator``.

        Returns:
            ``(loss, info)`` of ``sds_loss``: ``d loss / d x`` is the SDS gradient (through ``to_model``).
        """
        latents = x if model_space else self.to_model(x)
        return sds_loss(self.noise_pred_fn, latents, (self.embed(list(prompts)), self.embed([""])),
                        self.alphas_cumprod, t, guidance_scale=guidance_scale, generator=generator)


class TextEmbeddingCache:
    """Encodes each prompt once through ``encode_fn`` and keeps its embedding.

    Args:
        encode_fn: ``(list[str]) -> (B, L, D)`` float tensor, one row per prompt (e.g.
            :func:`lib.guidance.stable_diffusion.sd_text_encode_fn`, or the offline prior's tiny
            encoder).

    ``cache(prompts)`` returns (B, L, D) for a string or a list of strings, calling ``encode_fn``
    once for the prompts not yet cached (detached, on encode_fn's device and dtype).
    :meth:`free_encoder` drops the encoder (so its GPU memory can be reclaimed); cached prompts
    still work afterwards, new ones raise RuntimeError.

    Example:
        >>> cache = TextEmbeddingCache(lambda ps: torch.ones(len(ps), 3, 4))
        >>> cache(["a", "b"]).shape, cache("a").shape
        (torch.Size([2, 3, 4]), torch.Size([1, 3, 4]))
    """

    def __init__(self, encode_fn: Callable[[List[str]], torch.Tensor]):
        self.encode_fn: Optional[Callable] = encode_fn
        self._cache: Dict[str, torch.Tensor] = {}

    def __len__(self) -> int:
        return len(self._cache)

    def __contains__(self, prompt: str) -> bool:
        return prompt in self._cache

    def __call__(self, prompts: Union[str, Sequence[str]]) -> torch.Tensor:
        prompts = [prompts] if isinstance(prompts, str) else list(prompts)
        if not prompts:
            raise ValueError("prompts must be a string or a non-empty list of strings, got []")
        missing = list(dict.fromkeys(p for p in prompts if p not in self._cache))
        if missing:
            if self.encode_fn is None:
                raise RuntimeError(f"the text encoder was freed; prompts not cached: {missing}")
            emb = self.encode_fn(missing)
            if not torch.is_tensor(emb) or emb.ndim != 3 or emb.shape[0] != len(missing):
                raise ValueError(f"encode_fn must return ({len(missing)}, L, D), got "
                                 f"{tuple(emb.shape) if torch.is_tensor(emb) else type(emb)}")
            for p, e in zip(missing, emb.detach()):
                self._cache[p] = e
        return torch.stack([self._cache[p] for p in prompts])

    def free_encoder(self) -> None:
        """Drop the reference to ``encode_fn`` and, when CUDA is available, empty its cache.
        (Memory is only returned if nothing else still holds the encoder.)"""
        self.encode_fn = None
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
