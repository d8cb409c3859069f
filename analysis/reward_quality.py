"""The numbers of offline reward quality and its gate, from per-step labelled rewards (pure numpy/pandas/scipy).

Input: one row per (provider, task, epsilon, episode, step) — a **steps table** with the learned reward of the
transition (``reward``), the env's shaped reward (``dense``) and the episode's first-success step
(``first_success``: the number of steps up to and including the first successful transition, as an expert
clip's ``meta["first_success"]``; -1 when the episode never succeeds) — plus each task's pre-success window
``K`` (:func:`success_window`: the median first-success step of the task's held-out expert episodes). The
runner that records and labels the episodes is ``experiments.reward_quality``; this module only counts, so
every number can be recomputed from a saved ``steps.csv.gz`` without a model.

Why a pre-success window: expert training clips end at their first success, so a video model never sees the
arm holding still at the goal and may score those frames low (design section 6b). The gate is on the first
``K`` steps of every episode, where the model's training data lives; whole-episode numbers stand beside it,
and the mean standardised reward before / after the first success measures the post-success question.

Definitions (per provider, split and task unless pooled):

- ``rho_whole`` / ``rho_window``: Spearman of the episode's learned return (sum over all steps / over steps
  ``[0, K)``) with ``1 - epsilon``; p-value from ``scipy.stats.spearmanr``; 95% CI from a seeded bootstrap
  over episodes (stratified by task when tasks are pooled).
- Pooled over the tasks of a split (the gate's number): returns are z-scored within (provider, task) first,
  so a task with larger raw scores does not dominate, then one Spearman over all episodes of the split.
- ``rho_dense_step``: Spearman of the learned per-step reward with the dense oracle's per-step reward over
  all (episode, step) pairs of the task (pooled pairs, not a mean of per-episode correlations: an episode of
  the random policy has nearly constant dense reward, so its own correlation is mostly noise).
- ``z_pre_expert`` / ``z_post_expert`` / ``z_pre_random`` / ``z_post_random``: the per-step reward z-scored
  within (provider, task) over all steps of all episodes, averaged before and after the first success for
  the expert (epsilon 0; split at each episode's own first success, at ``K`` if it never succeeded) and for
  the random policy (the largest epsilon, normally 1; it rarely succeeds, so always split at ``K``).

The gate (the paper's Fig. 3 claim, design section 6b): seen tasks pooled ``rho_window >= 0.4`` with
``p < 0.01``; unseen tasks pooled ``rho_window > 0`` with ``p < 0.05``. A split without tasks is not part of
the verdict (reported as such), so a seen-only scoring can still pass.
"""

from __future__ import annotations

import warnings
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy.stats import rankdata, spearmanr

from analysis.palette import method_colors, method_order

#: panels of the figure and rows of the tables, in display order
SPLIT_ORDER = ("seen", "unseen")
#: the gate's thresholds (design section 6b): seen tasks
SEEN_MIN_RHO, SEEN_MAX_P = 0.4, 0.01
#: unseen tasks: the correlation must be positive (strictly), at this significance
UNSEEN_MIN_RHO, UNSEEN_MAX_P = 0.0, 0.05
#: bootstrap resamples and confidence level of every CI
N_BOOT, CI_LEVEL = 2000, 0.95
#: columns of the steps table (what the runner writes to ``steps.csv.gz``)
STEP_COLUMNS = ("provider", "task", "split", "epsilon", "episode", "step", "reward", "dense", "first_success")


# ------------------------------------------------------------------------------ the window


def success_window(first_success_steps: Iterable[int]) -> int:
    """``K``: the median first-success step of a task's held-out expert episodes, rounded to an int >= 1.

    An empty list is an error (a task without expert test episodes has no window); the caller names the
    command that records them."""
    steps = np.asarray(list(first_success_steps), dtype=float)
    if steps.size == 0 or np.any(steps < 1):
        raise ValueError(
            f"success_window: expected first-success steps >= 1 of at least one expert episode, got {steps.tolist()}"
        )
    return max(1, int(np.round(np.median(steps))))


def check_steps(steps: pd.DataFrame, windows: Mapping[str, int]) -> None:
    missing = [c for c in STEP_COLUMNS if c not in steps.columns]
    if missing:
        raise ValueError(f"steps table: expected columns {', '.join(STEP_COLUMNS)}; missing {missing}")
    lacking = sorted(set(steps["task"]) - set(windows))
    if lacking:
        raise ValueError(f"windows: no pre-success window K for task(s) {', '.join(lacking)}")


# ------------------------------------------------------------------------------ per episode


def episode_returns(steps: pd.DataFrame, windows: Mapping[str, int]) -> pd.DataFrame:
    """One row per (provider, task, epsilon, episode): its length, first success, ``K``, learned return over the
    whole episode (``raw_return``) and over ``[0, K)`` (``window_return``), the dense returns likewise, and the
    per-task z-scores of both learned returns (``std_return``, ``std_window_return``)."""
    check_steps(steps, windows)
    s = steps.assign(K=steps["task"].map(windows))
    s = s.assign(in_window=s["step"] < s["K"])
    keys = ["provider", "task", "split", "epsilon", "episode"]
    g = s.groupby(keys, sort=False)
    out = g.agg(
        length=("step", "size"),
        first_success=("first_success", "first"),
        K=("K", "first"),
        raw_return=("reward", "sum"),
        dense_return=("dense", "sum"),
    ).reset_index()
    w = (
        s[s["in_window"]]
        .groupby(keys, sort=False)
        .agg(window_return=("reward", "sum"), dense_window_return=("dense", "sum"))
        .reset_index()
    )
    out = out.merge(w, on=keys, how="left").fillna({"window_return": 0.0, "dense_window_return": 0.0})
    out["success"] = out["first_success"] > 0
    out["std_return"] = zscore_within(out, "raw_return")
    out["std_window_return"] = zscore_within(out, "window_return")
    return out


def zscore_within(table: pd.DataFrame, column: str, by: Sequence[str] = ("provider", "task")) -> pd.Series:
    """``column`` z-scored within each group (population std); a constant group gives 0, not NaN (it carries
    no ranking information)."""
    grouped = table.groupby(list(by), sort=False)[column]
    mean, std = grouped.transform("mean"), grouped.transform(lambda x: x.std(ddof=0))
    return pd.Series(np.where(std > 0, (table[column] - mean) / std.where(std > 0, 1.0), 0.0), index=table.index)


# ------------------------------------------------------------------------------ statistics


def spearman_ci(
    x: np.ndarray,
    y: np.ndarray,
    strata: np.ndarray | None = None,
    n_boot: int = N_BOOT,
    seed: int = 0,
    level: float = CI_LEVEL,
) -> dict[str, float]:
    """Spearman rho and p-value of ``x`` with ``y`` and a percentile bootstrap CI over the rows (resampled
    within each stratum when ``strata`` is given, so every task keeps its episode count). NaN where there is
    no ranking (fewer than 3 rows, or ``x`` or ``y`` constant)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    out = {"rho": np.nan, "p": np.nan, "ci_low": np.nan, "ci_high": np.nan, "n": int(len(x))}
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return out
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = spearmanr(x, y)
    out["rho"], out["p"] = float(res.statistic), float(res.pvalue)
    rng = np.random.default_rng(seed)
    strata = np.zeros(len(x), int) if strata is None else pd.factorize(np.asarray(strata))[0]
    idx = np.empty((n_boot, len(x)), dtype=np.int64)
    for s in np.unique(strata):
        members = np.flatnonzero(strata == s)
        idx[:, members] = rng.choice(members, size=(n_boot, len(members)), replace=True)
    rx, ry = rankdata(x[idx], axis=1), rankdata(y[idx], axis=1)
    rx -= rx.mean(axis=1, keepdims=True)
    ry -= ry.mean(axis=1, keepdims=True)
    denom = np.sqrt((rx**2).sum(axis=1) * (ry**2).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        boot = np.where(denom > 0, (rx * ry).sum(axis=1) / np.where(denom > 0, denom, 1.0), np.nan)
    if np.isfinite(boot).any():
        tail = 100 * (1 - level) / 2
        out["ci_low"], out["ci_high"] = (float(v) for v in np.nanpercentile(boot, [tail, 100 - tail]))
    return out


def _return_stats(g: pd.DataFrame, pooled: bool, seed: int, n_boot: int) -> dict[str, Any]:
    """Whole-episode and window Spearman (with CIs) of one group of episodes."""
    row: dict[str, Any] = {}
    y = 1.0 - g["epsilon"].to_numpy(float)
    strata = g["task"].to_numpy() if pooled else None
    for name, col in (("whole", "std_return"), ("window", "std_window_return")):
        st = spearman_ci(g[col].to_numpy(float), y, strata, n_boot, seed)
        row.update(
            {
                f"rho_{name}": st["rho"],
                f"p_{name}": st["p"],
                f"ci_low_{name}": st["ci_low"],
                f"ci_high_{name}": st["ci_high"],
            }
        )
    return row


def step_zscores(steps: pd.DataFrame) -> pd.Series:
    """The per-step reward z-scored within (provider, task) over all steps of all episodes."""
    return zscore_within(steps, "reward")


def before_after(steps: pd.DataFrame, windows: Mapping[str, int]) -> pd.DataFrame:
    """Per (provider, task): mean standardised per-step reward before / after the first success, for the expert
    (epsilon 0; its own first success, ``K`` if it never succeeded) and the random policy (the largest epsilon;
    always ``K``). NaN where a part has no steps (a policy whose episodes end before ``K``)."""
    s = steps.assign(z=step_zscores(steps), K=steps["task"].map(windows))
    rows = []
    for (provider, task), g in s.groupby(["provider", "task"], sort=False):
        row = {"provider": provider, "task": task}
        levels = {"expert": g["epsilon"].min(), "random": g["epsilon"].max()}
        for who, eps in levels.items():
            part = g[g["epsilon"] == eps]
            if who == "expert" and eps == 0:
                cut = np.where(part["first_success"] > 0, part["first_success"], part["K"])
            else:
                cut = part["K"].to_numpy()
            before = part["step"].to_numpy() < cut
            row[f"z_pre_{who}"] = float(part["z"][before].mean()) if before.any() else np.nan
            row[f"z_post_{who}"] = float(part["z"][~before].mean()) if (~before).any() else np.nan
            row[f"epsilon_{who}"] = float(eps)
        rows.append(row)
    return pd.DataFrame(rows)


def dense_step_correlation(steps: pd.DataFrame) -> pd.DataFrame:
    """Per (provider, task): Spearman of the learned per-step reward with the dense per-step reward over all
    (episode, step) pairs of the task."""
    rows = []
    for (provider, task), g in steps.groupby(["provider", "task"], sort=False):
        x, y = g["reward"].to_numpy(float), g["dense"].to_numpy(float)
        rho = p = np.nan
        if len(g) >= 3 and np.ptp(x) > 0 and np.ptp(y) > 0:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = spearmanr(x, y)
            rho, p = float(res.statistic), float(res.pvalue)
        rows.append({"provider": provider, "task": task, "rho_dense_step": rho, "p_dense_step": p, "n_steps": len(g)})
    return pd.DataFrame(rows)


def task_table(
    episodes: pd.DataFrame, steps: pd.DataFrame, windows: Mapping[str, int], seed: int = 0, n_boot: int = N_BOOT
) -> pd.DataFrame:
    """Per (provider, split, task): ``K``, counts, whole/window Spearman with p and CI, the per-step correlation
    with the dense oracle and the before/after standardised rewards."""
    rows = []
    for (provider, split, task), g in episodes.groupby(["provider", "split", "task"], sort=False):
        rows.append(
            {
                "provider": provider,
                "split": split,
                "task": task,
                "K": int(windows[task]),
                "n_episodes": len(g),
                "n_levels": g["epsilon"].nunique(),
                **_return_stats(g, False, seed, n_boot),
            }
        )
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    table = table.merge(dense_step_correlation(steps), on=["provider", "task"], how="left")
    table = table.merge(before_after(steps, windows), on=["provider", "task"], how="left")
    return ordered(table, ["split", "task"])


def split_table(episodes: pd.DataFrame, seed: int = 0, n_boot: int = N_BOOT) -> pd.DataFrame:
    """Per (provider, split), the tasks pooled (per-task z-scored returns): whole/window Spearman with p and a
    task-stratified bootstrap CI; the gate's input."""
    rows = []
    for (provider, split), g in episodes.groupby(["provider", "split"], sort=False):
        rows.append(
            {
                "provider": provider,
                "split": split,
                "n_episodes": len(g),
                "n_tasks": g["task"].nunique(),
                **_return_stats(g, True, seed, n_boot),
            }
        )
    return ordered(pd.DataFrame(rows), ["split"])


def summary_table(episodes: pd.DataFrame, seed: int = 0, n_boot: int = N_BOOT) -> pd.DataFrame:
    """Per (provider, split, epsilon): mean standardised whole and window return with a bootstrap 95% CI over
    episodes (what the figure draws)."""
    rng = np.random.default_rng(seed)
    tail = 100 * (1 - CI_LEVEL) / 2
    rows = []
    for (provider, split, eps), g in episodes.groupby(["provider", "split", "epsilon"], sort=False):
        row = {
            "provider": provider,
            "split": split,
            "epsilon": float(eps),
            "n_episodes": len(g),
            "n_tasks": g["task"].nunique(),
        }
        for name, col in (("whole", "std_return"), ("window", "std_window_return")):
            v = g[col].to_numpy(float)
            boot = v[rng.integers(0, len(v), size=(n_boot, len(v)))].mean(axis=1)
            low, high = np.percentile(boot, [tail, 100 - tail])
            row.update({f"mean_{name}": float(v.mean()), f"ci_low_{name}": float(low), f"ci_high_{name}": float(high)})
        rows.append(row)
    return ordered(pd.DataFrame(rows), ["split", "epsilon"])


# ------------------------------------------------------------------------------ the gate


def _split_passes(split: str, rho: float, p: float) -> bool:
    if not (np.isfinite(rho) and np.isfinite(p)):
        return False
    if split == "seen":
        return rho >= SEEN_MIN_RHO and p < SEEN_MAX_P
    return rho > UNSEEN_MIN_RHO and p < UNSEEN_MAX_P


def gate(splits: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Per provider: the pooled pre-success-window numbers of each split, whether each passes, and ``pass``
    (every split present passes; no split at all fails). Whole-episode numbers ride along, never decide."""
    out: dict[str, dict[str, Any]] = {}
    for provider in method_order(splits["provider"]):
        entry: dict[str, Any] = {}
        for split in SPLIT_ORDER:
            row = splits[(splits["provider"] == provider) & (splits["split"] == split)]
            if row.empty:
                entry[split] = None
                continue
            r = row.iloc[0]
            rho, p = float(r["rho_window"]), float(r["p_window"])
            entry[split] = {
                "rho": _finite(rho),
                "p": _finite(p),
                "ci": [_finite(r["ci_low_window"]), _finite(r["ci_high_window"])],
                "n": int(r["n_episodes"]),
                "n_tasks": int(r["n_tasks"]),
                "rho_whole": _finite(r["rho_whole"]),
                "p_whole": _finite(r["p_whole"]),
                "pass": _split_passes(split, rho, p),
            }
        present = [entry[s] for s in SPLIT_ORDER if entry[s] is not None]
        entry["pass"] = bool(present) and all(e["pass"] for e in present)
        out[provider] = entry
    return out


def thresholds() -> dict[str, str]:
    """The gate's rule in words (written beside every verdict)."""
    return {
        "seen": f"pre-success-window Spearman >= {SEEN_MIN_RHO:g} with p < {SEEN_MAX_P:g}",
        "unseen": f"pre-success-window Spearman > {UNSEEN_MIN_RHO:g} with p < {UNSEEN_MAX_P:g}",
    }


def _finite(v: Any) -> float | None:
    """A JSON-friendly number: NaN becomes None."""
    v = float(v)
    return v if np.isfinite(v) else None


# ------------------------------------------------------------------------------ markdown


def _fmt(v: Any, spec: str = "+.2f") -> str:
    return "n/a" if v is None or (isinstance(v, float) and not np.isfinite(v)) else format(v, spec)


def gate_markdown(verdict: Mapping[str, Mapping[str, Any]]) -> str:
    """One row per provider: each split's window rho [CI] (p, n) and pass, whole-episode rho beside it."""
    rule = thresholds()
    lines = [
        f"Gate: seen tasks {rule['seen']}; unseen tasks {rule['unseen']} (tasks pooled, returns z-scored "
        f"per task; whole-episode Spearman reported beside it, not gated).",
        "",
        "| provider | seen: window rho [95% CI] (p, n) | seen: whole rho | unseen: window rho [95% CI] (p, n) "
        "| unseen: whole rho | gate |",
        "|---|---|---|---|---|---|",
    ]
    for provider, entry in verdict.items():
        cells = []
        for split in SPLIT_ORDER:
            e = entry.get(split)
            if e is None:
                cells += ["-", "-"]
                continue
            ci = e["ci"]
            cells.append(
                f"{_fmt(e['rho'])} [{_fmt(ci[0])}, {_fmt(ci[1])}] (p={_fmt(e['p'], '.2g')}, {e['n']}) "
                f"{'pass' if e['pass'] else 'FAIL'}"
            )
            cells.append(f"{_fmt(e['rho_whole'])} (p={_fmt(e['p_whole'], '.2g')})")
        lines.append(f"| {provider} | " + " | ".join(cells) + f" | {'**pass**' if entry['pass'] else '**FAIL**'} |")
    return "\n".join(lines) + "\n"


def task_markdown(tasks: pd.DataFrame) -> str:
    """Per provider and task: K, window and whole rho (p), per-step rho with dense, before/after z."""
    lines = [
        "| provider | split | task | K | window rho (p) | whole rho (p) | step rho with dense | "
        "expert z pre / post | random z pre / post |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in tasks.itertuples(index=False):
        lines.append(
            f"| {r.provider} | {r.split} | {r.task} | {r.K} | {_fmt(r.rho_window)} (p={_fmt(r.p_window, '.2g')}) | "
            f"{_fmt(r.rho_whole)} (p={_fmt(r.p_whole, '.2g')}) | {_fmt(r.rho_dense_step)} | "
            f"{_fmt(r.z_pre_expert)} / {_fmt(r.z_post_expert)} | {_fmt(r.z_pre_random)} / {_fmt(r.z_post_random)} |"
        )
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------ figure


def plot(summary: pd.DataFrame, title: str):
    """The paper's Figs. 2-3: mean standardised learned return against epsilon with 95% bootstrap CIs, one
    line per provider (suite colours; the dense oracle black), columns seen / unseen, rows the pre-success
    window (gated) and the whole episode."""
    import matplotlib  # local import: matplotlib.use("Agg") must run before pyplot is imported

    matplotlib.use("Agg")  # headless: the figure is written to files only
    import matplotlib.pyplot as plt  # local import: matplotlib.use("Agg") must run before pyplot is imported

    splits = [s for s in SPLIT_ORDER if s in set(summary["split"])]
    colors = method_colors(summary["provider"])
    if "noise" in colors:  # the control is drawn grey, never mistaken for a method
        colors["noise"] = (0.55, 0.55, 0.55)
    ticks = sorted(set(summary["epsilon"]))
    fig, axes = plt.subplots(2, len(splits), figsize=(max(6.8, 4.6 * len(splits)), 7.2), sharex=True, squeeze=False)
    for col, split in enumerate(splits):
        part = summary[summary["split"] == split]
        for row, (name, label) in enumerate((("window", "pre-success window [0, K)"), ("whole", "whole episode"))):
            ax = axes[row][col]
            for provider, color in colors.items():
                r = part[part["provider"] == provider].sort_values("epsilon")
                if r.empty:
                    continue
                x, y = r["epsilon"].to_numpy(float), r[f"mean_{name}"].to_numpy(float)
                style = "--" if provider in ("dense", "noise") else "-"
                ax.plot(x, y, marker="o", markersize=4, linewidth=1.8, color=color, linestyle=style, label=provider)
                ax.fill_between(
                    x,
                    r[f"ci_low_{name}"].to_numpy(float),
                    r[f"ci_high_{name}"].to_numpy(float),
                    color=color,
                    alpha=0.14,
                    linewidth=0,
                )
            ax.axhline(0.0, color="0.6", linewidth=0.8, linestyle=":", zorder=0)
            ax.set_xticks(ticks)
            ax.set_xticklabels([f"{e:g}" for e in ticks])
            n_tasks = int(part["n_tasks"].max())
            ax.set_title(f"{split} ({n_tasks} task{'s' * (n_tasks != 1)}): {label}", fontsize=10)
            ax.grid(alpha=0.3)
            if col == 0:
                ax.set_ylabel("standardised learned return")
            if row == 1:
                ax.set_xlabel("ε (fraction of random actions)")
    handles, labels = [], []
    for ax in axes.flat:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    fig.suptitle(f"{title}: learned return of ε-greedy experts (mean, 95% bootstrap CI)", fontsize=11)
    fig.tight_layout()
    fig.legend(handles, labels, loc="upper center", ncol=min(4, len(labels)), frameon=False, bbox_to_anchor=(0.5, 0.01))
    return fig


# ------------------------------------------------------------------------------ order


def ordered(table: pd.DataFrame, then: list[str]) -> pd.DataFrame:
    """Rows in the suite's method order (unknown names, e.g. ``noise``, after), then seen before unseen, then
    by the remaining keys."""
    if table.empty:
        return table.reset_index(drop=True)
    rank = {m: i for i, m in enumerate(method_order(table["provider"]))}
    split_rank = {s: i for i, s in enumerate(SPLIT_ORDER)}
    keys = table.assign(_p=table["provider"].map(rank))
    cols = ["_p"]
    for c in then:
        if c == "split":
            keys["_s"] = keys["split"].map(lambda s: split_rank.get(s, len(split_rank)))
            cols.append("_s")
        else:
            cols.append(c)
    return (
        keys.sort_values(cols, kind="stable")
        .drop(columns=[c for c in ("_p", "_s") if c in keys])
        .reset_index(drop=True)
    )
