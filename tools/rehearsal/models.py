"""Tiny randomly initialised stand-ins of the pretrained models the notebooks load in full mode.

CI rehearses the full-mode cells with ``HF_HUB_OFFLINE=1`` and ``HF_HUB_CACHE`` / ``TORCH_HOME``
pointing at folders written here, so ``from_pretrained(<the real hub id>)`` and torchvision's
weight loading run their real code on models a few hundred kB in size:

- :func:`write_hub_cache` writes, in huggingface_hub's cache layout
  (``models--<org>--<name>/refs/main`` holding a 40-hex commit, ``snapshots/<commit>/<files>``; the
  files are plain copies, the layout huggingface_hub itself uses where symlinks are unavailable):

  - ``lib.guidance.stable_diffusion.SD_MODEL_IDS[0]``: the SD 1.5 repo's ``model_index.json``,
    ``scheduler/`` (PNDM, SD 1.5's config), ``tokenizer/`` (CLIP BPE: vocab.json, merges.txt; a
    byte-level vocabulary of 512 symbols plus merges for common words, so any English prompt
    tokenizes; padded to 77), ``feature_extractor/``, and tiny ``text_encoder/``, ``unet/``, ``vae/``
    and ``safety_checker/``, each also as the ``*.fp16.safetensors`` variant the real repo has. The
    VAE keeps SD's 4 latent channels, 8x downsampling and 512 px ``sample_size`` (the Guide's
    renders -> 64 x 64 latents); the U-Net takes (4, 64, 64) latents.
  - ``lib.pretrained.depth.DEFAULT_MODELS[0]``: ``DepthAnythingForDepthEstimation`` on a tiny DINOv2 and
    the real repo's ``preprocessor_config.json`` (518 px, multiple of 14).
  - ``lib.pretrained.clip.CLIP_MODELS[0]``: a tiny ``CLIPModel`` (as the real repo holds; loadable as
    ``CLIPVisionModelWithProjection``, 224 px, patch 32) and the real ``preprocessor_config.json``.

- :func:`write_torch_hub` writes torchvision's ResNet-18 ImageNet file name under
  ``<torch_home>/hub/checkpoints/``: random weights of the real shapes, stored as float16 (half the
  size; ``load_state_dict`` casts them).

Every weight is drawn from ``torch.manual_seed(seed)`` inside ``torch.random.fork_rng`` (the caller's
global RNG is left as it was), so the same seed gives the same files.
"""
from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import shutil
import tempfile
from pathlib import Path

import torch

from lib.data.download import sha256sum
from tools.rehearsal.archives import single_thread

SPECIAL = {"bos": "<|startoftext|>", "eos": "<|endoftext|>"}
WORDS = ("a an the of photo picture render object chair car vase lamp table airplane cow truck lego "
         "front side back overhead view top bottom left right red green blue white black wooden metal").split()
CLIP_MEAN, CLIP_STD = [0.48145466, 0.4578275, 0.40821073], [0.26862954, 0.26130258, 0.27577711]
# the real repos' files, verbatim (https://huggingface.co/<id>/blob/main/<file>)
SD_MODEL_INDEX = {"_class_name": "StableDiffusionPipeline", "_diffusers_version": "0.6.0",
                  "feature_extractor": ["transformers", "CLIPImageProcessor"],
                  "safety_checker": ["stable_diffusion", "StableDiffusionSafetyChecker"],
                  "scheduler": ["diffusers", "PNDMScheduler"], "text_encoder": ["transformers", "CLIPTextModel"],
                  "tokenizer": ["transformers", "CLIPTokenizer"], "unet": ["diffusers", "UNet2DConditionModel"],
                  "vae": ["diffusers", "AutoencoderKL"]}
SD_SCHEDULER = {"_class_name": "PNDMScheduler", "_diffusers_version": "0.6.0", "beta_end": 0.012,
                "beta_schedule": "scaled_linear", "beta_start": 0.00085, "num_train_timesteps": 1000,
                "set_alpha_to_one": False, "skip_prk_steps": True, "steps_offset": 1, "trained_betas": None,
                "clip_sample": False}
CLIP_PREPROCESSOR = {"crop_size": 224, "do_center_crop": True, "do_normalize": True, "do_resize": True,
                     "feature_extractor_type": "CLIPFeatureExtractor", "image_mean": CLIP_MEAN,
                     "image_std": CLIP_STD, "resample": 3, "size": 224}  # laion's; SD's adds do_convert_rgb
DEPTH_PREPROCESSOR = {"do_normalize": True, "do_pad": False, "do_rescale": True, "do_resize": True,
                      "ensure_multiple_of": 14, "image_mean": [0.485, 0.456, 0.406],
                      "image_processor_type": "DPTImageProcessor", "image_std": [0.229, 0.224, 0.225],
                      "keep_aspect_ratio": True, "resample": 3, "rescale_factor": 0.00392156862745098,
                      "size": {"height": 518, "width": 518}, "size_divisor": None}
# tiny architectures (the real sizes in comments)
UNET = dict(sample_size=64, in_channels=4, out_channels=4, layers_per_block=1,  # SD 1.5: 2
            block_out_channels=(16, 32),  # (320, 640, 1280, 1280)
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),  # attention at 32 x 32, not 64 x 64
            up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
            cross_attention_dim=32, attention_head_dim=4, norm_num_groups=8)  # 768, 8, 32
VAE = dict(in_channels=3, out_channels=3, latent_channels=4, sample_size=512, layers_per_block=1,
           down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
           block_out_channels=(8, 8, 8, 8), norm_num_groups=4)  # (128, 256, 512, 512), 32: 8x downsampling kept
TEXT = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,  # 768, 3072, 12, 12
            max_position_embeddings=77, hidden_act="quick_gelu", projection_dim=32,
            bos_token_id=0, pad_token_id=1, eos_token_id=2)  # SD 1.5's (legacy) ids: pooling by argmax
VISION = dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
              image_size=224, patch_size=32)  # ViT-B/32: 768, 3072, 12, 12


def write_hub_cache(hub_cache, seed: int = 0) -> list[str]:
    """Write the three tiny hub models (module docstring) into ``hub_cache`` (an ``HF_HUB_CACHE``);
    a repo already there is replaced. Returns the hub ids written."""
    from lib.pretrained.clip import CLIP_MODELS
    from lib.guidance.stable_diffusion import SD_MODEL_IDS
    from lib.pretrained.depth import DEFAULT_MODELS

    hub_cache = Path(hub_cache)
    repos = ((SD_MODEL_IDS[0], _write_stable_diffusion), (DEFAULT_MODELS[0], _write_depth_anything),
             (CLIP_MODELS[0], _write_clip))
    with single_thread(), _quiet():
        for repo_id, write in repos:
            with tempfile.TemporaryDirectory(prefix="hub-standin-") as tmp, torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                write(Path(tmp))
                install_snapshot(hub_cache, repo_id, Path(tmp))
    return [repo_id for repo_id, _ in repos]


def write_torch_hub(torch_home, seed: int = 0) -> list[str]:
    """Write ``<torch_home>/hub/checkpoints/<file of ResNet18_Weights.IMAGENET1K_V1.url>``: a randomly
    initialised ResNet-18 state dict of the real keys and shapes, float tensors as float16.
    Returns the paths written, relative to ``torch_home``."""
    import torchvision

    url = torchvision.models.ResNet18_Weights.IMAGENET1K_V1.url
    path = Path(torch_home) / "hub" / "checkpoints" / url.rsplit("/", 1)[-1]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        state = torchvision.models.resnet18().state_dict()
    state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return [path.relative_to(torch_home).as_posix()]


def install_snapshot(hub_cache: Path, repo_id: str, folder: Path) -> Path:
    """Copy ``folder`` into ``hub_cache`` as the ``main`` revision of model repo ``repo_id``: the
    commit id is the sha1 of the files' names and sha256 digests. Returns the snapshot folder."""
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    listing = "".join(f"{p.relative_to(folder).as_posix()} {sha256sum(p)}\n" for p in files)
    commit = hashlib.sha1(listing.encode()).hexdigest()
    repo = Path(hub_cache) / ("models--" + repo_id.replace("/", "--"))
    if repo.exists():
        shutil.rmtree(repo)
    snapshot = repo / "snapshots" / commit
    shutil.copytree(folder, snapshot)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)  # huggingface_hub writes the bare hash, no newline
    return snapshot


# ------------------------------------------------------------------------------- the writers
@contextlib.contextmanager
def _quiet():
    """transformers' and diffusers' loggers at "error" and their progress bars off inside (saving a
    tiny model prints a progress bar and a float16-cast warning per file); restored on exit."""
    import diffusers.utils.logging as diffusers_log
    import transformers.utils.logging as transformers_log

    saved = [(log, log.get_verbosity(), log.is_progress_bar_enabled()) for log in (diffusers_log, transformers_log)]
    for log, _, _ in saved:
        log.set_verbosity_error()
        log.disable_progress_bar()
    try:
        yield
    finally:
        for log, verbosity, bars in saved:
            log.set_verbosity(verbosity)
            if bars:
                log.enable_progress_bar()


def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")


def _byte_symbols() -> list[str]:
    """The 256 base symbols of CLIP's byte-level BPE in its vocabulary order (``bytes_to_unicode``:
    printable bytes as themselves, then the others mapped to chr(256 + i))."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    others = [b for b in range(256) if b not in printable]
    return [chr(b) for b in printable] + [chr(256 + i) for i in range(len(others))]


def _write_tokenizer(folder: Path) -> int:
    """A CLIP tokenizer in the SD 1.5 repo's four files; returns the vocabulary size."""
    base = _byte_symbols()
    vocab = base + [s + "</w>" for s in base]
    merges = []
    for word in WORDS:  # left-to-right merges that make each word one token
        pieces = list(word[:-1]) + [word[-1] + "</w>"]
        while len(pieces) > 1:
            pair = (pieces[0], pieces[1])
            if pair not in merges:
                merges.append(pair)
                vocab.append(pair[0] + pair[1])
            pieces = [pair[0] + pair[1]] + pieces[2:]
    vocab += [SPECIAL["bos"], SPECIAL["eos"]]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps({tok: i for i, tok in enumerate(vocab)}, ensure_ascii=False))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges))
    token = lambda s: {"content": s, "lstrip": False, "normalized": True, "rstrip": False,  # noqa: E731
                       "single_word": False}
    _write_json(folder / "special_tokens_map.json", {
        "bos_token": token(SPECIAL["bos"]), "eos_token": token(SPECIAL["eos"]), "pad_token": SPECIAL["eos"],
        "unk_token": token(SPECIAL["eos"])})
    added = lambda s: {"__type": "AddedToken", **token(s)}  # noqa: E731
    _write_json(folder / "tokenizer_config.json", {
        "add_prefix_space": False, "bos_token": added(SPECIAL["bos"]), "do_lower_case": True,
        "eos_token": added(SPECIAL["eos"]), "errors": "replace", "model_max_length": 77,
        "name_or_path": "openai/clip-vit-large-patch14", "pad_token": SPECIAL["eos"],
        "special_tokens_map_file": "./special_tokens_map.json", "tokenizer_class": "CLIPTokenizer",
        "unk_token": added(SPECIAL["eos"])})
    return len(vocab)


def _save_with_fp16(model, folder: Path) -> None:
    """``save_pretrained`` twice: the fp16 variant (``*.fp16.safetensors``) first, then float32, whose
    config.json is the one kept."""
    copy.deepcopy(model).to(torch.float16).save_pretrained(folder, variant="fp16")
    model.save_pretrained(folder)


def _write_stable_diffusion(folder: Path) -> None:
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from diffusers.pipelines.stable_diffusion.safety_checker import StableDiffusionSafetyChecker
    from transformers import CLIPConfig, CLIPTextConfig, CLIPTextModel

    vocab_size = _write_tokenizer(folder / "tokenizer")
    _write_json(folder / "model_index.json", SD_MODEL_INDEX)
    _write_json(folder / "scheduler" / "scheduler_config.json", SD_SCHEDULER)
    _write_json(folder / "feature_extractor" / "preprocessor_config.json",
                {**CLIP_PREPROCESSOR, "do_convert_rgb": True})
    text = CLIPTextModel(CLIPTextConfig(vocab_size=vocab_size, **TEXT))
    safety = StableDiffusionSafetyChecker(CLIPConfig(text_config=dict(vocab_size=vocab_size, **TEXT),
                                                     vision_config=VISION, projection_dim=8))
    for name, model in (("text_encoder", text), ("unet", UNet2DConditionModel(**UNET)),
                        ("vae", AutoencoderKL(**VAE)), ("safety_checker", safety)):
        _save_with_fp16(model.eval(), folder / name)


def _write_depth_anything(folder: Path) -> None:
    from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation, Dinov2Config

    backbone = Dinov2Config(hidden_size=32, num_hidden_layers=4, num_attention_heads=2, mlp_ratio=2,  # 384, 12, 6, 4
                            image_size=518, patch_size=14, out_indices=[1, 2, 3, 4], reshape_hidden_states=False,
                            initializer_range=0.2)
    config = DepthAnythingConfig(backbone_config=backbone, reassemble_hidden_size=32, patch_size=14,
                                 neck_hidden_sizes=[8, 16, 32, 32], fusion_hidden_size=16, head_hidden_size=8,
                                 depth_estimation_type="relative", initializer_range=0.2)  # a non-constant output
    DepthAnythingForDepthEstimation(config).eval().save_pretrained(folder)
    _write_json(folder / "preprocessor_config.json", DEPTH_PREPROCESSOR)


def _write_clip(folder: Path) -> None:
    from transformers import CLIPConfig, CLIPModel

    vocab_size = _write_tokenizer(folder)
    proj = 8  # also in both sub-configs, as the real config.json has it (CLIPVisionModelWithProjection reads it there)
    config = CLIPConfig(text_config=dict(vocab_size=vocab_size, **{**TEXT, "projection_dim": proj}),
                        vision_config=dict(VISION, projection_dim=proj), projection_dim=proj)
    CLIPModel(config).eval().save_pretrained(folder)
    _write_json(folder / "preprocessor_config.json", CLIP_PREPROCESSOR)
