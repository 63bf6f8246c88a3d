"""Pretrained weights from the Hugging Face hub (Colab, full mode): try a list of sources in order.

Hub repositories disappear (Stable Diffusion's original ids are gone, see ``lib.guidance``), so a
loader takes several candidates: hub ids or local ``save_pretrained`` folders. :func:`load_first`
returns the first that loads; when none does, the error lists every source with a one-line
reason, says whether the hub was offline, and ends with the caller's hint (how to use a local
copy). Nothing here downloads by itself: the loaders passed in do.

Example:
    >>> load_first(["a", "b"], lambda src: {"b": 2}[src], "a number", "pass another key")
    2
"""
from __future__ import annotations

import os
from typing import Callable, Sequence, TypeVar, Union

T = TypeVar("T")


def hub_offline() -> bool:
    """True when ``HF_HUB_OFFLINE`` is set (the environment, or huggingface_hub's constant, which it
    reads once at import)."""
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
        return True
    try:
        from huggingface_hub import constants
    except ImportError:
        return False
    return bool(getattr(constants, "HF_HUB_OFFLINE", False))


def failure_reason(err: BaseException) -> str:
    """``"ErrorType: first line of the message"`` (at most 200 characters of it)."""
    lines = str(err).strip().splitlines()
    return f"{type(err).__name__}: {lines[0][:200] if lines else ''}"


def load_first(sources: Sequence[str], load: Callable[[str], T], what: str, hint: str) -> T:
    """``load(source)`` for the first of ``sources`` that does not raise.

    Args:
        sources: hub ids or local folders, tried in order. load: ``source -> loaded object``.
        what: what is loaded, for the error ("Stable Diffusion", "a depth estimator").
        hint: the error's last lines: how to get a working source.
    Raises:
        ValueError: ``sources`` is empty.
        RuntimeError: nothing loaded; lists each source with :func:`failure_reason`.
    """
    if not sources:
        raise ValueError(f"no source to load {what} from: pass at least one hub id or folder")
    failures = []
    for src in sources:
        try:
            return load(src)
        except Exception as err:  # noqa: BLE001 -- every failure is reported below
            failures.append(f"  - {src!r}: {failure_reason(err)}")
    offline = " (HF_HUB_OFFLINE is set: only local files and the cache were searched)" if hub_offline() else ""
    raise RuntimeError(f"Could not load {what}{offline}. Tried, in order:\n" + "\n".join(failures) + "\n" + hint)


def load_transformers_model(model: Union[str, Sequence[str]], processor_class: str, model_class: str, what: str,
                            hint: str, device="cpu", **model_kwargs):
    """``(processor, model)`` of ``transformers`` from the first source in ``model`` that loads: the
    processor by ``processor_class.from_pretrained(source)``, the model by
    ``model_class.from_pretrained(source, **model_kwargs)``, moved to ``device`` in eval mode.

    Args:
        model: a hub id or a local ``save_pretrained`` folder, or several to try in order.
        processor_class, model_class: class names in ``transformers`` ("AutoImageProcessor", ...).
        what, hint: as :func:`load_first`.
    Raises:
        ValueError: no source. RuntimeError: ``transformers`` is missing, or no source loaded.
    """
    sources = [model] if isinstance(model, str) else list(model)
    try:
        import transformers
    except ImportError as e:
        raise RuntimeError(f"loading {what} needs the `transformers` package ({e}); pip install transformers") from e
    processor_type, model_type = getattr(transformers, processor_class), getattr(transformers, model_class)

    def load(source: str):
        processor = processor_type.from_pretrained(source)
        return processor, model_type.from_pretrained(source, **model_kwargs).to(device).eval()

    return load_first(sources, load, what, hint)

