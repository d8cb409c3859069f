"""What a provider is asked to make before runs start: one frozen request, built once by the caller.

``suites.plan`` builds one :class:`PrepareRequest` per method of a suite (and ``experiments.reward_quality``
one per analysis), ``suites.run`` groups runs by (provider, request) and calls each provider's
``prepare(request, log)`` once per group. The request is also the grouping key, so it holds exactly what
changes the artefacts to make: the domain and tasks, where data lives, the model size preset and
training budget, the expert-video count, whether to write model-quality reports, the device and
precision of pretraining, and those of the method's provider overrides that the provider says change what
must be prepared (``RewardProvider.prepare_overrides``, e.g. a video model's ``context``).

Imports nothing heavy: providers, the planner and the analysis all use it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from common.runtime import RESOLVED_PRECISIONS
from rewards.models import PRESETS
from tasks.registry import DOMAINS


def _hashable(value: Any, name: str) -> Any:
    if isinstance(value, (list, tuple)):
        return tuple(_hashable(v, name) for v in value)
    try:
        hash(value)
    except TypeError:
        raise ValueError(
            f"override {name!r}: a prepare override must be a plain value (number, string, "
            f"tuple), got {type(value).__name__}"
        ) from None
    return value


def _check_steps(name: str, v: Any) -> None:
    if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
        raise ValueError(f"{name}: expected an int >= 1 or None (the default), got {v!r}")


def _per_model_steps(steps: Any) -> tuple[tuple[str, int], ...]:
    """A per-model budget as sorted ``(kind, steps)`` pairs, its kinds and counts checked."""
    from rewards.models.store import model_kinds  # local import: it imports torch; only this check needs it

    pairs = dict(steps)
    unknown = sorted(set(pairs) - set(model_kinds()))
    if unknown:
        raise ValueError(
            f"pretrain_steps: unknown model {', '.join(map(repr, unknown))}; valid: {', '.join(model_kinds())}"
        )
    for kind, v in pairs.items():
        _check_steps(f"pretrain_steps[{kind!r}]", v)
    return tuple(sorted(pairs.items()))


@dataclass(frozen=True)
class PrepareRequest:
    """Everything a provider's ``prepare`` needs; hashable, so equal requests are prepared once.

    ``tasks`` are the tasks runs will use (a provider may add others, e.g. the domain's seen tasks for
    pretraining); ``overrides`` are sorted ``(name, value)`` pairs (see :meth:`make`). ``pretrain_steps`` is
    one budget for every model, or one per model kind (``{"codec": 3000, "vqdiffusion": 10000}``, kept as sorted
    pairs; a kind left out trains its preset's default): the models need different budgets to be good enough
    (docs/models-and-rewards.md#how-long-to-train), and :meth:`steps_for` gives each its own.
    """

    domain: str
    tasks: tuple[str, ...]
    data_root: str | None = None
    preset: str = "small"
    pretrain_steps: int | Mapping[str, int] | tuple[tuple[str, int], ...] | None = None
    expert_episodes: int | None = None
    reports: bool = True
    device: str = "auto"
    precision: str = "fp32"
    overrides: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        if self.domain not in DOMAINS:
            raise ValueError(f"unknown domain {self.domain!r}; valid: {', '.join(DOMAINS)}")
        if isinstance(self.tasks, str):
            raise ValueError(f"tasks: expected a sequence of task names, got the string {self.tasks!r}")
        object.__setattr__(self, "tasks", tuple(sorted(set(self.tasks))))
        if self.preset not in PRESETS:
            raise ValueError(f"unknown preset {self.preset!r}; valid: {', '.join(PRESETS)}")
        if self.precision not in RESOLVED_PRECISIONS:
            raise ValueError(f"unknown precision {self.precision!r}; valid: {', '.join(RESOLVED_PRECISIONS)}")
        if isinstance(self.pretrain_steps, (Mapping, tuple, list)):
            object.__setattr__(self, "pretrain_steps", _per_model_steps(self.pretrain_steps))
        else:
            _check_steps("pretrain_steps", self.pretrain_steps)
        _check_steps("expert_episodes", self.expert_episodes)
        if self.data_root is not None:
            object.__setattr__(self, "data_root", str(self.data_root))
        pairs = dict(self.overrides)
        object.__setattr__(self, "overrides", tuple(sorted((k, _hashable(v, k)) for k, v in pairs.items())))

    @classmethod
    def make(cls, provider: type, *, overrides: Mapping[str, Any] | None = None, **fields: Any) -> "PrepareRequest":
        """The request for ``provider`` (a ``RewardProvider`` class): of the method's ``overrides`` only the
        ones in ``provider.prepare_overrides`` are kept, so methods that differ in anything else (alpha, a
        learning rate) share one preparation."""
        wanted = getattr(provider, "prepare_overrides", ())
        kept = {k: v for k, v in (overrides or {}).items() if k in wanted}
        return cls(overrides=tuple(kept.items()), **fields)

    def override(self, name: str, default: Any = None) -> Any:
        """A kept provider override, or ``default`` when the method does not set it."""
        return dict(self.overrides).get(name, default)

    def steps_for(self, kind: str) -> int | None:
        """The training budget of the model kind ``kind`` (``"codec"``, ``"vqdiffusion"``, ...); None: the
        preset's default."""
        if isinstance(self.pretrain_steps, tuple):
            return dict(self.pretrain_steps).get(kind)
        return self.pretrain_steps

    def budget(self, kinds: Iterable[str] | None = None) -> int | dict[str, int] | None:
        """``pretrain_steps`` as a run's ``config.json`` records it: an int, ``{kind: steps}`` or None; ``kinds``
        keeps only those models' budgets (a run records those of the models its reward uses)."""
        if not isinstance(self.pretrain_steps, tuple):
            return self.pretrain_steps
        return {k: v for k, v in self.pretrain_steps if kinds is None or k in kinds}

    def with_tasks(self, tasks: Iterable[str]) -> "PrepareRequest":
        return dataclasses.replace(self, tasks=tuple(tasks))

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly, for a run's ``config.json`` (what was prepared for it)."""
        d = dataclasses.asdict(self)
        d["tasks"], d["overrides"] = list(self.tasks), dict(self.overrides)
        d["pretrain_steps"] = self.budget()
        return d
