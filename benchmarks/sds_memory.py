"""Stable Diffusion score distillation on a GPU: time per iteration and peak memory (notebook 07, 09).

Prints one table: for image SDS (latents optimised directly, 512^2 images = 64^2 latents) and for
NeRF SDS (notebook 07's DreamFusion step at its full-mode settings: a ``lib.models.nerf.NeRFField``
rendered at R^2, upsampled to 512^2, encoded by the VAE with gradients, SDS on the latents, backward
through the VAE encoder and the NeRF), both through a ``lib.guidance.guide.Guide`` as in the notebook, the median
seconds per iteration after warm-up and ``torch.cuda.max_memory_allocated`` (reset before each
case), with and without the memory-saving switches (VAE gradient checkpointing, attention slicing).

The networks are SD 1.5's architecture (UNet2DConditionModel 860 M parameters, AutoencoderKL
84 M, CLIP ViT-L/14 text encoder 123 M) built from its published configs. With ``--model-dir``
(a folder written by ``StableDiffusionPipeline.save_pretrained``) the real weights are loaded;
without it the weights are random, which changes no tensor's shape, so time and memory are the
same (the images are not meaningful, and nothing here looks at them).

    python -m benchmarks.sds_memory --device cuda                 # the GPU measurement (fp16)
    python -m benchmarks.sds_memory --device cpu --tiny --iters 2 # a seconds-long check of the code
"""
from __future__ import annotations

import argparse
import statistics

import torch

from benchmarks.t4_budget.sd import SD15_TEXT, SD15_UNET, SD15_VAE, build_pipeline
from lib.guidance.stable_diffusion import sd_guide
from lib.train import Stopwatch

# a few-MB stand-in of SD 1.5's structure for --tiny (checks the code on a CPU)
TINY_UNET = dict(SD15_UNET, sample_size=8, block_out_channels=(32, 32, 64, 64), cross_attention_dim=32,
                 layers_per_block=1, norm_num_groups=8)
TINY_VAE = dict(SD15_VAE, sample_size=64, block_out_channels=(8, 8, 16, 16), layers_per_block=1,
                norm_num_groups=8)
TINY_TEXT = dict(SD15_TEXT, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                 num_attention_heads=2, projection_dim=32)


def build(tiny: bool, model_dir, device, dtype):
    """Stable Diffusion as ``lib.guidance.stable_diffusion.load_stable_diffusion`` returns it: a
    pipeline with every network frozen, on ``device`` in ``dtype``; from ``model_dir`` (real weights)
    or SD 1.5's architecture with random weights (``benchmarks/t4_budget/sd.py``)."""
    if model_dir is not None:
        from diffusers import StableDiffusionPipeline
        pipe = StableDiffusionPipeline.from_pretrained(model_dir, local_files_only=True, safety_checker=None,
                                                       requires_safety_checker=False)
    else:
        pipe = build_pipeline(TINY_UNET, TINY_VAE, TINY_TEXT) if tiny else build_pipeline()
    for net in (pipe.unet, pipe.vae, pipe.text_encoder):
        net.to(device, dtype).eval().requires_grad_(False)
    return pipe


def _peak_reset(device):
    if torch.device(device).type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def _peak_gb(device) -> float:
    return torch.cuda.max_memory_allocated() / 2**30 if torch.device(device).type == "cuda" else float("nan")


def time_steps(step, iters: int, warmup: int, device) -> float:
    """Median seconds of ``step()`` over ``iters`` calls after ``warmup`` calls."""
    for _ in range(warmup):
        step()
    times = []
    for _ in range(iters):
        with Stopwatch(device) as watch:
            step()
        times.append(watch.seconds)
    return statistics.median(times)


def image_sds_case(guide, device):
    """notebook 07's image SDS step (``lib.methods.sds``): Adam on one float32 latent image."""
    from lib.guidance.sds import TimestepSchedule
    from lib.methods.sds import TensorState, make_image_sds_step
    image = TensorState(torch.randn((1,) + tuple(guide.model_shape))).to(device)
    step = make_image_sds_step(image, guide, ["a chair"], 100.0, TimestepSchedule(), 100,
                               generator=torch.Generator().manual_seed(0), lr=0.02, clamp=None)
    return lambda: step(0)


def nerf_sds_case(guide, render_size: int, device, n_samples: int = 64, hidden: int = 64, n_layers: int = 4):
    """notebook 07's DreamFusion step (``lib.methods.dreamfusion``) at its full-mode settings: one view of
    ``render_size``^2 rays, upsampled to 512^2, VAE-encoded with gradients, SDS, backward into the NeRF."""
    from lib.methods.dreamfusion import DreamFusionConfig, dreamfusion_field, make_dreamfusion_step
    cfg = DreamFusionConfig(prompt="a chair", steps=100, views_per_step=1, image_size=render_size,
                            n_samples=n_samples, hidden=hidden, n_layers=n_layers, guidance_scale=100.0,
                            shading_warmup=0.0)
    field = dreamfusion_field(cfg).to(device)
    step = make_dreamfusion_step(field, guide, cfg)
    counter = iter(range(10**9))
    return lambda: step(next(counter) % cfg.steps)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--dtype", default="float16", choices=("float16", "float32"))
    p.add_argument("--tiny", action="store_true", help="a few-MB stand-in network (CPU check of the code)")
    p.add_argument("--model-dir", default=None, help="a save_pretrained folder of SD 1.5 (real weights)")
    p.add_argument("--iters", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--render-sizes", type=int, nargs="+", default=[64, 128])
    args = p.parse_args(argv)
    dtype = getattr(torch, args.dtype)
    image_size = 64 if args.tiny else 512
    dev = args.device
    _peak_reset(dev)
    pipe = build(args.tiny, args.model_dir, dev, dtype)
    weights_gb = _peak_gb(dev)
    guide = sd_guide(pipe)  # the notebooks' Guide
    unet, vae = pipe.unet, pipe.vae
    del pipe  # the guide's text cache holds the text encoder only until free_encoder()
    guide.embed(["", "a chair"] + [f"a chair, {v} view" for v in ("front", "side", "back", "overhead")])
    guide.embed.free_encoder()  # as the notebook does once its prompts are cached
    print(f"device {dev} ({torch.cuda.get_device_name() if dev.startswith('cuda') else 'cpu'}), {args.dtype}, "
          f"torch {torch.__version__}, weights {'from ' + args.model_dir if args.model_dir else 'random (SD 1.5 shapes)'}")
    print(f"UNet {sum(p.numel() for p in unet.parameters()) / 1e6:.0f} M, VAE "
          f"{sum(p.numel() for p in vae.parameters()) / 1e6:.0f} M parameters; peak after loading all three "
          f"parts {weights_gb:.2f} GB")
    rows = []
    cases = [("image SDS", f"latents {image_size // 8}^2", False,
              lambda: image_sds_case(guide, dev))]
    for r in args.render_sizes:
        for saving in (False, True):
            cases.append(("NeRF SDS", f"render {r}^2 -> {image_size}^2", saving,
                          lambda r=r: nerf_sds_case(guide, r, dev)))
    for name, size, saving, make in cases:
        if saving:
            vae.enable_gradient_checkpointing()
            unet.set_attention_slice("auto")
        _peak_reset(dev)
        try:
            sec = time_steps(make(), args.iters, args.warmup, dev)
            rows.append((name, size, "on" if saving else "off", f"{sec * 1000:.0f}", f"{_peak_gb(dev):.2f}"))
        except torch.cuda.OutOfMemoryError:
            rows.append((name, size, "on" if saving else "off", "OOM", "-"))
        if saving:
            vae.disable_gradient_checkpointing()
            unet.set_attention_slice(None)
    print("| case | size | memory savers | ms / iteration | peak GB (allocated) |")
    print("|---|---|---|---|---|")
    for r in rows:
        print("| " + " | ".join(r) + " |")


if __name__ == "__main__":
    main()
