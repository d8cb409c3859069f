"""One ``to_dict`` / ``from_dict`` pattern for every model config (codec, VideoGPT, VQ-Diffusion).

A model's config is saved beside its weights as a plain dict (``model.pt``, ``train_state.pt``) and
rebuilt when the model is loaded. ``dataclasses.asdict`` turns tuples into lists on the way through JSON,
so the way back must know each field's type: :class:`ModelConfig` reads the dataclass's type hints and
rebuilds nested configs as their dataclass and tuple fields as tuples, whatever the field's name. A new
tuple field therefore survives a save and load without touching this code, and an unknown key (a config
saved by another version) is an error that lists the valid ones, as ``agents.DrQV2Config`` does.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any, Mapping


def _rebuild(hint: Any, value: Any) -> Any:
    """``value`` (from JSON or ``asdict``) as the type ``hint`` says: nested configs and tuples."""
    if isinstance(hint, type) and issubclass(hint, ModelConfig) and isinstance(value, Mapping):
        return hint.from_dict(value)
    origin = typing.get_origin(hint)
    if origin is typing.Union or str(origin) == "types.UnionType":
        for arg in typing.get_args(hint):
            if arg is not type(None) and value is not None:
                return _rebuild(arg, value)
        return value
    if origin is tuple and isinstance(value, (list, tuple)):
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_rebuild(args[0], v) for v in value)
        if args and len(args) == len(value):
            return tuple(_rebuild(a, v) for a, v in zip(args, value))
        return tuple(value)
    return value


class ModelConfig:
    """Mixin for the model config dataclasses: ``to_dict()`` and ``from_dict(mapping)``."""

    def to_dict(self) -> dict[str, Any]:
        """A plain dict (nested configs as dicts), safe for JSON and ``torch.load(weights_only=...)``."""
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]):
        """Rebuild from ``to_dict`` output (a partial mapping keeps the defaults of the keys left out)."""
        if not isinstance(data, Mapping):
            raise ValueError(f"{cls.__name__}.from_dict expects a mapping, got {type(data).__name__}")
        names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
        unknown = sorted(set(data) - set(names))
        if unknown:
            raise ValueError(f"unknown {cls.__name__} keys {unknown}; valid keys: {names}")
        hints = typing.get_type_hints(cls)
        return cls(**{k: _rebuild(hints.get(k), v) for k, v in data.items()})
