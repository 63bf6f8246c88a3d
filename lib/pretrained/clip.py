"""A differentiable CLIP image encoder (NeuralLift's CLIP loss on Colab, notebook 09).

NeuralLift-360 compares novel views with the reference image in CLIP's image-embedding space. The
weights used here are LAION-2B's ViT-B/32 (the open_clip model the paper's code uses), in the
Hugging Face format that ``transformers`` loads (``CLIPVisionModelWithProjection``); OpenAI's
ViT-B/32 is the fallback. The encoder must pass gradients to the renders, so it does not use the
(PIL-based) image processor: it resizes with ``torch.nn.functional.interpolate`` to the model's
input size and normalises with the processor's mean and standard deviation.

Nothing here downloads unless ``transformers`` is allowed to (Colab); offline, the notebook uses
notebook 07's judge network as the encoder instead.

Example (CPU; a tiny random model saved locally):
    >>> import tempfile
    >>> from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection
    >>> folder = tempfile.mkdtemp()
    >>> cfg = CLIPVisionConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
    ...                        image_size=16, patch_size=8, projection_dim=8)
    >>> CLIPVisionModelWithProjection(cfg).save_pretrained(folder)
    >>> _ = CLIPImageProcessor(size={"shortest_edge": 16}, crop_size={"height": 16, "width": 16}).save_pretrained(folder)
    >>> encode = load_clip_encoder(folder)
    >>> tuple(encode(torch.rand(2, 32, 32, 3)).shape)
    (2, 8)
"""
from __future__ import annotations

from typing import Callable, Sequence, Union

import torch

from lib.images import to_nchw
from lib.pretrained.hub import load_transformers_model

CLIP_MODELS = ("laion/CLIP-ViT-B-32-laion2B-s34B-b79K", "openai/clip-vit-base-patch32")


def load_clip_encoder(model: Union[str, Sequence[str]] = CLIP_MODELS, device="cpu",
                      dtype: torch.dtype = torch.float32) -> Callable[[torch.Tensor], torch.Tensor]:
    """``encode(images) -> embeddings``: images (B, H, W, 3) float in [0, 1] (any H, W; resized to
    the model's input), embeddings (B, D) float32 (CLIP's projected image embedding, not
    normalised), differentiable w.r.t. the images. The model is frozen (eval, no parameter grads).

    Args:
        model: hub id(s) or local ``save_pretrained`` folder(s) holding the vision model and its
            image processor config, tried in order. dtype: the model's weights (float16 on a GPU).
    Raises:
        RuntimeError listing every source tried and why it failed.
    """
    hint = ("Run with network access once (Colab), or save_pretrained CLIPVisionModelWithProjection and "
            "CLIPImageProcessor into a folder and pass it; offline, use the judge as the encoder (notebook 09).")
    processor, net = load_transformers_model(model, "CLIPImageProcessor", "CLIPVisionModelWithProjection",
                                             "a CLIP image encoder", hint, device, torch_dtype=dtype)
    net.requires_grad_(False)
    size = (int(net.config.image_size),) * 2  # the model's input side (224 for ViT-B/32)
    mean = torch.tensor(processor.image_mean, device=device).view(1, 3, 1, 1)
    std = torch.tensor(processor.image_std, device=device).view(1, 3, 1, 1)

    def encode(images: torch.Tensor) -> torch.Tensor:
        x = to_nchw(images.to(device).float(), size, "images for the CLIP encoder")  # antialiased, like CLIP's PIL resize
        x = ((x - mean) / std).to(dtype)
        return net(pixel_values=x).image_embeds.float()

    return encode
