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

    python benchmarks/sds_memory.py --device cuda                 # the GPU measurement (fp16)
    python benchmarks/sds_memory.py --device cpu --tiny --iters 2 # a seconds-long check of the code
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

# SD 1.5's published configs (unet/config.json, vae/config.json, text_encoder/config.json)
SD15_UNET = dict(sample_size=64, in_channels=4, out_channels=4, layers_per_block=2,
                 block_out_channels=(320, 640, 1280, 1280), cross_attention_dim=768, attention_head_dim=8,
                 down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
                 up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3)
SD15_VAE = dict(in_channels=3, out_channels=3, latent_channels=4, layers_per_block=2, sample_size=512,
                block_out_channels=(128, 256, 512, 512), down_block_types=("DownEncoderBlock2D",) * 4,
                up_block_types=("UpDecoderBlock2D",) * 4, scaling_factor=0.18215)
SD15_TEXT = dict(vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                 num_attention_heads=12, max_position_embeddings=77, hidden_act="quick_gelu")
# a few-MB stand-in of the same structure for --tiny (checks the code on a CPU)
TINY_UNET = dict(SD15_UNET, sample_size=8, block_out_channels=(32, 32, 64, 64), cross_attention_dim=32,
                 layers_per_block=1, norm_num_groups=8)
TINY_VAE = dict(SD15_VAE, sample_size=64, block_out_channels=(8, 8, 16, 16), layers_per_block=1,
                norm_num_groups=8)
TINY_TEXT = dict(SD15_TEXT, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                 num_attention_heads=2)


def build(tiny: bool, model_dir, device, dtype):
    """(unet, vae, text_encoder, alphas_cumprod), frozen, on ``device`` in ``dtype``."""
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel
    if model_dir is not None:
        unet = UNet2DConditionModel.from_pretrained(model_dir, subfolder="unet", local_files_only=True)
        vae = AutoencoderKL.from_pretrained(model_dir, subfolder="vae", local_files_only=True)
        text = CLIPTextModel.from_pretrained(model_dir, subfolder="text_encoder", local_files_only=True)
    else:
        unet = UNet2DConditionModel(**(TINY_UNET if tiny else SD15_UNET))
        vae = AutoencoderKL(**(TINY_VAE if tiny else SD15_VAE))
        text = CLIPTextModel(CLIPTextConfig(**(TINY_TEXT if tiny else SD15_TEXT)))
    sched = DDPMScheduler(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012,
                          beta_schedule="scaled_linear")
    parts = [m.to(device, dtype).eval().requires_grad_(False) for m in (unet, vae, text)]
    return (*parts, sched.alphas_cumprod.to(device))


def _sync(device):
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


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
        _sync(device)
        t0 = time.perf_counter()
        step()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def random_guide(unet, vae, text, abar, device):
    """A ``lib.guidance.guide.Guide`` over these parts, as ``sd_guide`` builds it from a pipeline, with
    token ids made from each prompt's bytes instead of the CLIP tokenizer (no vocabulary files)."""
    from lib.guidance.guide import Guide, TextEmbeddingCache
    from lib.guidance.stable_diffusion import decode_latents, encode_images, sd_noise_pred_fn
    from lib.guidance.guide import resize_nchw
    size = int(vae.config.sample_size)
    n_tokens = text.config.max_position_embeddings

    def encode(prompts):
        ids = torch.zeros(len(prompts), n_tokens, dtype=torch.long)
        for i, p in enumerate(prompts):
            codes = list(p.encode())[:n_tokens]
            ids[i, :len(codes)] = torch.tensor(codes, dtype=torch.long) % text.config.vocab_size
        with torch.no_grad():
            return text(ids.to(device))[0]

    return Guide("SD 1.5 shapes", sd_noise_pred_fn(unet), TextEmbeddingCache(encode), abar,
                 lambda im: encode_images(vae, resize_nchw(im, size)), lambda z: decode_latents(vae, z),
                 (4, size // 8, size // 8), size)


def image_sds_case(guide, device):
    """notebook 07's image SDS step (``lib.methods.sds``): Adam on one float32 latent image."""
    from lib.guidance.sds import TimestepSchedule
    from lib.methods.sds import TensorState, make_image_sds_step
    image = TensorState(torch.randn((1,) + tuple(guide.model_shape))).to(device)
    step = make_image_sds_step(image, guide, ["a chair"], 100.0, TimestepSchedule(), 100, lr=0.02, clamp=None)
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
    unet, vae, text, abar = build(args.tiny, args.model_dir, dev, dtype)
    weights_gb = _peak_gb(dev)
    guide = random_guide(unet, vae, text, abar, dev)
    guide.embed(["", "a chair"] + [f"a chair, {v} view" for v in ("front", "side", "back", "overhead")])
    guide.embed.free_encoder()  # as the notebook does once its prompts are cached
    del text
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
