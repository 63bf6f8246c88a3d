"""Train the offline text-conditioned diffusion prior (``lib.methods.offline_prior``) and save it with save_pretrained.

Renders the dataset (``lib.methods.offline_prior.prior_dataset``), builds the model (``lib.methods.offline_prior.make_prior``),
trains it (``lib.methods.offline_prior.train_prior``), prints a log line every ``--log-every`` steps, and writes
the prior into ``--out`` atomically: everything goes to a temporary sibling folder first, which is
renamed onto ``--out`` only when complete (an existing ``--out`` is replaced). The UNet's weights are
saved in float16 (3.3 MB instead of 6.5 MB for the default prior). Layout: see
``lib.models.text_prior`` (unet/, scheduler/, text_encoder/, tokenizer/), plus ``train_args.json``
(the resolved arguments and the command) and ``train_log.txt`` (the log lines). Deterministic
from ``--seed`` on a given machine and thread count.

The command that made the committed ``assets/prior`` (its sha256 and sizes are in ``assets/MANIFEST``,
its log in ``assets/prior/train_log.txt``)::

    OMP_NUM_THREADS=2 python -m tools.train_prior --out assets/prior --image-size 32 --seed 0 \\
        --n-per-class 64 --steps 700 --batch 32

Measured (UNet 1,687,075 + text encoder 35,264 parameters, 32 px): 1.33 s per step at --batch 32
with 2 torch threads on the 2-core CPU machine with nothing else running, 700 steps in 934 s
(15.6 min) including 1.7 s of rendering; mean loss of the last 50 steps 0.0228.

Tiny smoke run::

    python -m tools.train_prior --out /tmp/prior --steps 20 --image-size 16 --n-per-class 8 \\
        --classes chair car --channels 8 16 --cross-attention-dim 16 --batch 8
"""
from __future__ import annotations

import argparse
import copy
import time
from pathlib import Path


def parse_args(argv=None) -> argparse.Namespace:
    from lib.data.shapes import CATEGORIES
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True, help="output folder (replaced atomically)")
    p.add_argument("--steps", type=int, default=700, help="optimiser steps")
    p.add_argument("--image-size", type=int, default=32, help="pixels per side")
    p.add_argument("--seed", type=int, default=0, help="seeds data, weights and training")
    p.add_argument("--n-per-class", type=int, default=64, help="training images per class (4 views per object)")
    p.add_argument("--classes", nargs="+", default=list(CATEGORIES), help="shape categories")
    p.add_argument("--batch", type=int, default=32, help="images per step")
    p.add_argument("--lr", type=float, default=1e-3, help="peak AdamW learning rate (cosine decay)")
    p.add_argument("--channels", type=int, nargs="+", default=[32, 64, 64], help="UNet block widths")
    p.add_argument("--cross-attention-dim", type=int, default=64, help="text state width")
    p.add_argument("--norm-groups", type=int, default=8, help="GroupNorm groups (divides every width)")
    p.add_argument("--p-uncond", type=float, default=0.1, help="prompt dropout for classifier-free guidance")
    p.add_argument("--p-class-only", type=float, default=0.2, help="prompts shortened to 'a <class>'")
    p.add_argument("--log-every", type=int, default=50, help="steps between log lines")
    return p.parse_args(argv)


def main(argv=None) -> Path:
    args = parse_args(argv)
    import torch

    from lib.methods.offline_prior import PriorTraining, count_parameters, make_prior, prior_dataset, train_prior
    from tools.provenance import RunLog, save_with_provenance
    out = Path(args.out).resolve()
    log = RunLog()

    t0 = time.perf_counter()
    images, prompts = prior_dataset(args.n_per_class, args.image_size, args.seed, tuple(args.classes))
    log(f"data: {len(images)} images {tuple(images.shape[1:])}, {len(set(prompts))} prompts, "
        f"{time.perf_counter() - t0:.1f} s")
    unet, scheduler, tokenizer, text_encoder = make_prior(
        args.image_size, args.channels, args.cross_attention_dim, norm_num_groups=args.norm_groups,
        classes=tuple(args.classes), seed=args.seed)
    log(f"model: unet {count_parameters(unet):,} + text encoder {count_parameters(text_encoder):,} parameters, "
        f"torch threads {torch.get_num_threads()}")
    settings = PriorTraining(args.steps, args.batch, args.lr, args.seed, args.p_uncond, args.p_class_only,
                             log_every=args.log_every)
    history = train_prior(unet, scheduler, tokenizer, text_encoder, images, prompts, settings, log=log)
    tail = [h["loss"] for h in history[-min(50, len(history)):]]
    log(f"done: mean loss of the last {len(tail)} steps {sum(tail) / len(tail):.4f}, "
        f"{time.perf_counter() - t0:.1f} s total")

    def save(folder: Path) -> None:
        # the UNet's weights are stored in float16 (half the size; load_prior returns float32 again:
        # its outputs move by < 1e-3), the other parts are small and stay float32
        copy.deepcopy(unet).half().save_pretrained(folder / "unet")
        scheduler.save_pretrained(folder / "scheduler")
        text_encoder.save_pretrained(folder / "text_encoder")
        tokenizer.save_pretrained(folder / "tokenizer")

    save_with_provenance(out, save, "tools.train_prior", args, log.lines, argv)
    print(f"saved {out}")
    return out


if __name__ == "__main__":
    main()
