"""Suites from TOML files: ``python -m suites.run --suite-file my_suite.toml``.

A suite file holds the fields of ``suites.definitions.Suite``, so a new benchmark (other tasks, another
provider, a sweep of its parameters) needs no edit of the package. ``suites/examples/my_suite.toml`` is
a complete example::

    name = "my_suite"                  # the results folder: results/my_suite/ (not a built-in suite's name)
    description = "..."                # optional
    domain = "metaworld"               # metaworld | adroit
    tasks = ["reach", "door-close"]
    quick_tasks = ["reach"]            # the quick and smoke profiles' tasks (default: all tasks)
    default_profile = "quick"          # optional (default quick)
    zero_shot = false                  # optional
    methods = [
        "sparse",                                  # a reward provider by name
        "rnd:bonus_scale=0.5",                     # with parameters: label rnd-bonus_scale=0.5
        { label = "steps_5", provider = "diffusion_reward", overrides = { steps = 5 } },
    ]
    seeds = { paper = 4 }              # optional seed counts per profile

Everything is checked when the file is read, before any run or preparation starts: a bad key or value
raises ``SuiteFileError`` (a ValueError) naming the file and the key and listing what is valid, and
method overrides are checked against the provider's parameters.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

import tomllib

import rewards
import tasks as task_registry
from suites import definitions, profiles
from suites.definitions import LABEL, Method, Suite, check_overrides, method_label, parse_method

FIELDS = tuple(f.name for f in dataclasses.fields(Suite))
REQUIRED = ("name", "domain", "tasks", "methods")
METHOD_KEYS = ("label", "provider", "overrides")


class SuiteFileError(ValueError):
    """A suite file that cannot be read or holds a bad key or value; the message names the file."""


def load(path: str | Path) -> Suite:
    """The suite of TOML file ``path``, checked (see the module docstring)."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise SuiteFileError(f"{path}: no such suite file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise SuiteFileError(f"{path}: cannot be read: {e}") from None
    except tomllib.TOMLDecodeError as e:
        raise SuiteFileError(f"{path}: not valid TOML: {e}") from None
    return from_dict(data, str(path))


def from_dict(data: Mapping[str, Any], where: str = "suite") -> Suite:
    """The suite of a parsed suite file; ``where`` (the file's name) starts every error message."""

    def fail(message: str) -> SuiteFileError:
        return SuiteFileError(f"{where}: {message}")

    unknown = sorted(set(data) - set(FIELDS))
    if unknown:
        raise fail(f"unknown key {', '.join(map(repr, unknown))}; valid keys: {', '.join(FIELDS)}")
    missing = [k for k in REQUIRED if k not in data]
    if missing:
        raise fail(f"missing {', '.join(map(repr, missing))}; required keys: {', '.join(REQUIRED)}")

    name = _typed(data, "name", str, "a string", fail)
    if not LABEL.fullmatch(name):
        raise fail(f"name {name!r} is the results folder's name: letters, digits and . _ + = - only")
    if name in definitions.SUITES:
        raise fail(f"name {name!r} is a built-in suite's; pick another, so the two never share results/{name}")
    domain = _typed(data, "domain", str, "a string", fail)
    if domain not in task_registry.DOMAINS:
        raise fail(f"unknown domain {domain!r}; valid domains: {', '.join(task_registry.DOMAINS)}")
    suite_tasks = _task_list(data, "tasks", domain, fail)
    quick_tasks = _task_list(data, "quick_tasks", domain, fail) if "quick_tasks" in data else suite_tasks
    outside = [t for t in quick_tasks if t not in suite_tasks]
    if outside:
        raise fail(f"quick_tasks {', '.join(map(repr, outside))} not in tasks; tasks: {', '.join(suite_tasks)}")
    default_profile = _typed(data, "default_profile", str, "a string", fail, "quick")
    if default_profile not in profiles.PROFILES:
        raise fail(f"unknown default_profile {default_profile!r}; valid profiles: {', '.join(profiles.PROFILES)}")
    seeds = _typed(data, "seeds", dict, "a table of profile = seed count", fail, {})
    for profile, n in seeds.items():
        if profile not in profiles.PROFILES:
            raise fail(f"seeds: unknown profile {profile!r}; valid profiles: {', '.join(profiles.PROFILES)}")
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise fail(f"seeds: {profile} = {n!r}; a seed count is a whole number >= 1")
    return Suite(
        name=name,
        description=_typed(data, "description", str, "a string", fail, ""),
        domain=domain,
        tasks=suite_tasks,
        methods=_methods(data, fail),
        quick_tasks=quick_tasks,
        seeds=MappingProxyType(dict(seeds)),
        default_profile=default_profile,
        zero_shot=_typed(data, "zero_shot", bool, "true or false", fail, False),
    )


def _typed(data, key, kind, words, fail, default=None):
    if key not in data:
        return default
    value = data[key]
    if not isinstance(value, kind):
        raise fail(f"{key} must be {words}, got {value!r}")
    return value


def _task_list(data, key, domain, fail) -> tuple[str, ...]:
    names = _typed(data, key, list, "a list of task names", fail)
    if not names or not all(isinstance(t, str) for t in names):
        raise fail(f"{key} must be a non-empty list of task names, got {names!r}")
    for t in names:
        try:
            spec = task_registry.spec(t)
        except ValueError as e:  # lists the valid names
            raise fail(f"{key}: {e}") from None
        if spec.domain != domain:
            raise fail(
                f"{key}: {t!r} is a {spec.domain} task and the suite's domain is {domain}; its "
                f"{domain} tasks: {', '.join(task_registry.names(domain=domain, include_optional=True))}"
            )
    twice = sorted({t for t in names if names.count(t) > 1})
    if twice:
        raise fail(f"{key}: {', '.join(map(repr, twice))} given twice")
    return tuple(names)


def _methods(data, fail) -> tuple[Method, ...]:
    entries = _typed(data, "methods", list, "a list of methods", fail)
    if not entries:
        raise fail(
            "methods is empty; give at least one (a provider name, NAME:key=value,... or a table "
            "with provider, label and overrides)"
        )
    out: dict[str, Method] = {}
    for i, entry in enumerate(entries):
        at = f"methods[{i}]"
        try:
            if isinstance(entry, str):
                provider, overrides = parse_method(entry)
                label = method_label(provider, overrides)
            elif isinstance(entry, dict):
                bad = sorted(set(entry) - set(METHOD_KEYS))
                if bad:
                    raise ValueError(f"unknown key {', '.join(map(repr, bad))}; valid keys: {', '.join(METHOD_KEYS)}")
                provider, overrides = entry.get("provider"), entry.get("overrides", {})
                if not isinstance(provider, str):
                    raise ValueError(f"provider must be a reward provider's name, got {provider!r}")
                if not isinstance(overrides, dict):
                    raise ValueError(f"overrides must be a table of parameter = value, got {overrides!r}")
                label = entry["label"] if "label" in entry else method_label(provider, overrides)
                if not isinstance(label, str) or not LABEL.fullmatch(label):
                    raise ValueError(
                        f"label {label!r} is the method's results folder: letters, digits and . _ + = - only"
                    )
            else:
                raise ValueError(
                    f"expected a provider name, NAME:key=value,... or a table with provider, "
                    f"label and overrides, got {entry!r}"
                )
            if provider not in rewards.available():
                raise ValueError(
                    f"unknown reward provider {provider!r}; registered providers: {', '.join(rewards.available())}"
                )
            check_overrides(provider, overrides, f"overrides of {provider!r}")
        except ValueError as e:
            raise fail(f"{at}: {e}") from None
        if label in out:
            raise fail(f"{at}: label {label!r} is used by two methods; labels name results folders and must differ")
        out[label] = Method(label, provider, MappingProxyType(dict(overrides)))
    return tuple(out.values())
