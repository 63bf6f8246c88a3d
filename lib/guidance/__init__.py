"""Guidance: a 2D diffusion model as the prior for 3D (score distillation, notebook 07).

- :mod:`lib.guidance.sds`: timestep sampling and annealing (:class:`TimestepSchedule`), and
  :func:`sds_loss`, the SDS loss as a pure function of a noise-prediction callable
  ``noise_pred_fn(x_t, t, embeddings) -> eps_hat``, so Stable Diffusion and the course's small
  offline prior plug in the same way.
- :mod:`lib.guidance.prompts`: :func:`view_prompt` (view-dependent prompts from a camera's
  azimuth/elevation, one documented rule), :func:`validate_prompt`, and
  :class:`TextEmbeddingCache` (each prompt encoded once, the encoder freed afterwards).
- :mod:`lib.guidance.guide`: :class:`Guide`, what score distillation needs from a model (noise
  predictor, text cache, schedule, images <-> model space), built by ``lib.prior.prior_guide``
  offline or :func:`sd_guide` on Colab.
- :mod:`lib.guidance.load`: :func:`load_guide`, either guide by name.
- :mod:`lib.guidance.stable_diffusion`: :func:`load_stable_diffusion` (a list of model ids tried in
  order, a local folder first) and the small adapters :func:`sd_noise_pred_fn`,
  :func:`sd_text_encode_fn`, :func:`encode_images`, :func:`decode_latents`. diffusers is imported
  lazily, only by the loader.
"""
from lib.guidance.guide import Guide
from lib.guidance.load import GUIDES, load_guide
from lib.guidance.prompts import (VIEW_WORDS, TextEmbeddingCache, validate_prompt, view_prompt, view_prompts,
                                  view_word)
from lib.guidance.sds import (ANNEALS, T_MAX, T_MIN, WEIGHTINGS, TimestepSchedule, sample_timesteps,
                              sds_loss)
from lib.guidance.stable_diffusion import (SD_MODEL_IDS, decode_latents, encode_images,
                                           load_stable_diffusion, sd_guide, sd_noise_pred_fn,
                                           sd_text_encode_fn)

__all__ = ["GUIDES", "Guide", "load_guide", "sd_guide", "VIEW_WORDS", "TextEmbeddingCache", "validate_prompt", "view_prompt", "view_prompts", "view_word",
           "ANNEALS", "T_MAX", "T_MIN", "WEIGHTINGS", "TimestepSchedule", "sample_timesteps",
           "sds_loss", "SD_MODEL_IDS", "decode_latents", "encode_images", "load_stable_diffusion",
           "sd_noise_pred_fn", "sd_text_encode_fn"]
