"""Find reward providers by name: built-ins, classes registered in-process, and third-party entry points.

Three sources, looked at in this order:

1. ``BUILTINS``: name -> ``"module:Class"``, the one place a built-in provider is registered (its class
   carries no decorator). A table of strings, not decorators, because decorators only run once their
   module is imported: listing the names (``available()``, ``--list``, every "valid: ..." error) would
   then import every provider module and torch with them, seconds for a list of words. The module is
   imported only when ``get()`` or ``make()`` asks for that name, so ``import rewards`` stays torch-free.
2. Classes registered with ``@rewards.register("name")`` while the process runs (notebooks, tests); a
   built-in name cannot be taken this way.
3. Entry points of the group ``video_reward_bench.rewards`` of any installed distribution, read lazily
   (and cached; ``clear_cache()`` re-reads them), so a third-party package adds a provider without
   editing the suite::

       [project.entry-points."video_reward_bench.rewards"]
       my_reward = "my_package.module:MyReward"

A built-in name wins over an entry point of the same name (with a warning). A class loaded under a name
gets that name as its ``name`` attribute unless it sets one itself, so its own messages can say which
provider speaks before ``make()`` has finished building it.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import warnings
from importlib import metadata
from types import MappingProxyType
from typing import Any, Callable, Mapping

from common.runtime import PRECISIONS
from rewards.base import RewardProvider

ENTRY_POINT_GROUP = "video_reward_bench.rewards"

#: the built-in providers, imported on demand: a new one is a line here (and a test in
#: tests/test_rewards_registry.py checks each line loads a provider class of its module)
BUILTINS: Mapping[str, str] = MappingProxyType(
    {
        "sparse": "rewards.sparse:SparseReward",
        "dense": "rewards.dense:DenseReward",
        "rnd": "rewards.rnd:RNDReward",
        "amp": "rewards.amp:AMPReward",
        "diffusion_reward": "rewards.video_reward:DiffusionReward",
        "diffusion_reward_nonoise": "rewards.video_reward:DiffusionRewardNoNoise",
        "diffusion_ll": "rewards.video_reward:DiffusionLL",
        "viper": "rewards.video_reward:Viper",
        "viper_std": "rewards.video_reward:ViperStd",
        "viper_ce": "rewards.video_reward:ViperCE",
        "genreward": "rewards.genreward:GenReward",
        "genreward_video": "rewards.genreward:GenRewardVideo",
        "genreward_frame": "rewards.genreward:GenRewardFrame",
    }
)

#: keywords the runner gives every provider (``suites.train``): not a method's overrides
COMMON_KEYWORDS = ("task", "domain", "device", "data_root", "seed", "precision")

_registered: dict[str, type[RewardProvider]] = {}


class UnknownRewardError(ValueError, KeyError):
    """An unknown provider name; the message lists the valid ones.

    A ValueError (bad input) and a KeyError (failed lookup) at once, so either ``except`` catches it.
    """

    def __str__(self) -> str:  # KeyError would repr() the message; keep it readable
        return str(self.args[0]) if self.args else ""


def register(name: str) -> Callable[[type[RewardProvider]], type[RewardProvider]]:
    """Class decorator: make ``cls`` available as ``rewards.make(name, ...)`` in this process (notebooks,
    tests). Built-ins are listed in ``BUILTINS`` instead, a package's providers in its entry points."""
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"reward names are identifiers like 'rnd' or 'diffusion_reward', got {name!r}")
    if name in BUILTINS:
        raise ValueError(f"reward {name!r} is a built-in provider ({BUILTINS[name]}); register another name")

    def deco(cls: type[RewardProvider]) -> type[RewardProvider]:
        if not (isinstance(cls, type) and issubclass(cls, RewardProvider)):
            raise TypeError(f"@register({name!r}) expects a subclass of rewards.RewardProvider, got {cls!r}")
        old = _registered.get(name)
        if old is not None and _qualname(old) != _qualname(cls):
            raise ValueError(f"reward {name!r} is already registered to {_qualname(old)}")
        cls.name = name
        _registered[name] = cls
        return cls

    return deco


def unregister(name: str) -> None:
    """Forget a decorated class (tests and notebooks)."""
    _registered.pop(name, None)


@functools.lru_cache(maxsize=1)
def _entry_points() -> dict[str, metadata.EntryPoint]:
    return {ep.name: ep for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}


def clear_cache() -> None:
    """Re-read entry points on the next lookup (after installing a plugin or changing ``sys.path``)."""
    importlib.invalidate_caches()
    _entry_points.cache_clear()


def available() -> list[str]:
    """Every provider name: built-in, registered and from entry points, sorted."""
    return sorted(set(BUILTINS) | set(_registered) | set(_entry_points()))


def get(name: str) -> type[RewardProvider]:
    """The provider class for ``name`` (imports its module if needed)."""
    if name in BUILTINS:
        cls = _load(BUILTINS[name], name)
        if name in _entry_points():
            warnings.warn(
                f"entry point {name!r} ({_entry_points()[name].value}) is shadowed by the built-in "
                f"provider of that name",
                stacklevel=2,
            )
    elif name in _registered:
        cls = _registered[name]
    elif name in _entry_points():
        cls = _entry_points()[name].load()
        _check_class(cls, name, f"entry point {_entry_points()[name].value}")
        _name_class(cls, name)
    else:
        raise UnknownRewardError(f"unknown reward {name!r}; valid: {', '.join(available())}")
    return cls


def parameters(cls: type) -> list[str]:
    """The named constructor parameters of a provider class, in order: what ``make`` accepts as keywords and
    what a caller (e.g. the reward analysis) may set on it."""
    sig = inspect.signature(cls.__init__)
    return [
        p
        for p in list(sig.parameters)[1:]
        if sig.parameters[p].kind not in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL)
    ]


def takes_any_keyword(cls: type) -> bool:
    """Whether the class's ``__init__`` has ``**kwargs`` (then any keyword passes to it unchecked)."""
    return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in inspect.signature(cls.__init__).parameters.values())


def make(name: str, **kwargs: Any) -> RewardProvider:
    """Build provider ``name``: ``make("rnd", task="door-close", domain="metaworld", device="cuda")``.

    Common keywords: task, domain, device, data_root=None, seed=0, precision="fp32" (dropped for a provider
    whose ``__init__`` does not take it: it runs fp32); other keywords override the
    provider's own parameters. An unknown keyword raises a ValueError listing the ones it takes.
    """
    cls = get(name)
    sig = inspect.signature(cls.__init__)
    takes = parameters(cls)
    if "precision" in kwargs and "precision" not in takes and not takes_any_keyword(cls):
        # common keyword: a provider without networks worth autocasting (sparse, RND, AMP...) runs fp32 and does
        # not take it; the name is still checked, and the provider's ``precision`` stays "fp32"

        if kwargs["precision"] not in PRECISIONS:
            raise ValueError(f"unknown precision {kwargs['precision']!r}; valid: {', '.join(PRECISIONS)}")
        kwargs = {k: v for k, v in kwargs.items() if k != "precision"}
    if not takes_any_keyword(cls):
        unknown = sorted(set(kwargs) - set(takes))
        if unknown:
            raise ValueError(
                f"reward {name!r} got unknown parameter(s) {', '.join(unknown)}; it takes: {', '.join(takes)}"
            )
    try:
        sig.bind(None, **kwargs)
    except TypeError as e:
        raise ValueError(f"reward {name!r}: {e}; it takes: {', '.join(takes)}") from None
    provider = cls(**kwargs)
    provider.name = name  # one class may serve several names (e.g. with other defaults)
    return provider


def _load(spec: str, name: str) -> type[RewardProvider]:
    module, _, attr = spec.partition(":")
    cls = getattr(importlib.import_module(module), attr)
    _check_class(cls, name, spec)
    _name_class(cls, name)
    return cls


def _name_class(cls: type[RewardProvider], name: str) -> None:
    if not vars(cls).get("name"):
        cls.name = name


def _check_class(cls: Any, name: str, where: str) -> None:
    if not (isinstance(cls, type) and issubclass(cls, RewardProvider)):
        raise TypeError(f"reward {name!r} ({where}) is not a subclass of rewards.RewardProvider: {cls!r}")


def _qualname(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"
