"""Files passed between stages: weights and masks, written atomically and checked on load.

A file records which model it belongs to; loading checks the name, the tensor names and the
shapes against a freshly built model, so a corrupt file or one from another model is refused
with a message naming it, never loaded into a wrong-shaped network.
"""

from __future__ import annotations

import os

import torch

from .errors import LTHError
from .fileio import atomic_path
from .models import get_spec

FORMAT = "lth/1"


def _save(path, payload: dict) -> None:
    # Save through a file object: given a path, torch.save names the zip's records after the
    # file (here a random temporary name), so the same weights would give different bytes.
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        torch.save(payload, fh)


def _load(path, kind: str) -> dict:
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise LTHError(f"{path}: {kind} file is missing") from None
    # Garbage bytes fail inside torch's unpickler in many ways (EOFError, UnpicklingError,
    # IndexError, KeyError, struct.error, ...): any failure to parse means an unreadable file.
    except Exception as exc:
        reason = (str(exc).splitlines() or [type(exc).__name__])[0][:100]  # an empty file: EOFError()
        raise LTHError(f"{path}: not a readable {kind} file ({reason}); delete it and rerun") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT or payload.get("kind") != kind:
        raise LTHError(f"{path}: not a {kind} file of this pipeline (format {FORMAT})")
    field = {"weights": "state", "masks": "masks"}[kind]
    tensors = payload.get(field)
    if not isinstance(tensors, dict) or not all(isinstance(t, torch.Tensor) for t in tensors.values()):
        raise LTHError(f"{path}: {kind} file without a {field!r} mapping of names to tensors; delete it and rerun")
    return payload


def _check_tensors(path, model_name: str, tensors: dict, expected: dict[str, torch.Size], what: str) -> None:
    if set(tensors) != set(expected):
        raise LTHError(
            f"{path}: {what} names {sorted(tensors)} do not match model {model_name} ({sorted(expected)})"
        )
    for name, tensor in tensors.items():
        if tuple(tensor.shape) != tuple(expected[name]):
            raise LTHError(
                f"{path}: {what} {name} has shape {tuple(tensor.shape)}, model {model_name} needs {tuple(expected[name])}"
            )


def save_weights(path: str | os.PathLike, model_name: str, state: dict[str, torch.Tensor], meta: dict | None = None) -> None:
    _save(path, {"format": FORMAT, "kind": "weights", "model": model_name, "state": state, "meta": meta or {}})


def load_weights(path: str | os.PathLike, model_name: str) -> dict[str, torch.Tensor]:
    payload = _load(path, "weights")
    if payload.get("model") != model_name:
        raise LTHError(f"{path}: weights of model {payload.get('model')!r}, but the config says {model_name!r}")
    model = get_spec(model_name).build()
    expected = {k: v.shape for k, v in model.state_dict().items()}
    _check_tensors(path, model_name, payload["state"], expected, "tensor")
    return payload["state"]


def weights_meta(path: str | os.PathLike) -> dict:
    """What a weights file records beside its tensors (e.g. a leaf job's early stop)."""
    return _load(path, "weights").get("meta") or {}


def save_masks(path: str | os.PathLike, model_name: str, masks: dict[str, torch.Tensor], meta: dict | None = None) -> None:
    _save(path, {"format": FORMAT, "kind": "masks", "model": model_name, "masks": masks, "meta": meta or {}})


def load_masks(path: str | os.PathLike, model_name: str) -> dict[str, torch.Tensor]:
    payload = _load(path, "masks")
    if payload.get("model") != model_name:
        raise LTHError(f"{path}: masks of model {payload.get('model')!r}, but the config says {model_name!r}")
    spec = get_spec(model_name)
    model = spec.build()
    params = dict(model.named_parameters())
    expected = {n: params[n].shape for n in spec.prunable(model)}
    masks = payload["masks"]
    _check_tensors(path, model_name, masks, expected, "mask")
    for name, mask in masks.items():
        if mask.dtype != torch.bool:
            raise LTHError(f"{path}: mask {name} has dtype {mask.dtype}, expected bool")
    return masks
