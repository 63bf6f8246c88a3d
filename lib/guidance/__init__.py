"""Guidance: a 2D diffusion model as the prior for 3D (score distillation, notebooks 07 and 09).

Import from the module that defines a name (this package re-exports nothing):

- :mod:`lib.guidance.sds`: timestep sampling and annealing (``TimestepSchedule``), forward noising
  (``add_noise``), the clean-sample guess (``predict_x0``) and ``sds_loss``, the SDS loss as a pure
  function of a noise-prediction callable ``noise_pred_fn(x_t, t, embeddings) -> eps_hat``, so Stable
  Diffusion and the course's small offline prior plug in the same way.
- :mod:`lib.guidance.guide`: ``Guide``, what score distillation needs from a model (noise
  predictor, text cache, schedule, images <-> model space), and ``TextEmbeddingCache`` (each prompt
  encoded once, the encoder freed afterwards).
- :mod:`lib.guidance.prior`: the course's offline prior as a Guide (``prior_guide``, ``PRIOR_DIR``).
- :mod:`lib.guidance.stable_diffusion`: ``load_stable_diffusion`` (a list of model ids tried in
  order, a local folder first), ``sd_guide`` and the small adapters ``sd_noise_pred_fn``,
  ``sd_text_encode_fn``, ``encode_images``, ``decode_latents``; diffusers is imported lazily.
- :mod:`lib.guidance.load`: ``load_guide``, either guide by name.

The prompt grammar (view words, view-dependent prompts) is ``lib.prompts``: the prior's data, the
judge and the guides share it.
"""
