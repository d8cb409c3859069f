"""The numbers of the reward analysis, from one table of labelled episodes (pure pandas, no models).

Input: one row per (provider, task, epsilon, episode) with its learned ``raw_return`` (the sum of
``label_episode`` over the episode). Learned scores live on a different scale for every provider and
task (a VideoGPT log-likelihood is in the hundreds, a standardised entropy near 0), so before anything
is pooled the returns are z-scored within each (provider, task): this is the "standardised per task"
of design section 8 and the y axis of the paper's Figures 2 and 3.

Kept apart from the labelling pipeline (``analysis.reward_analysis``) so the statistics can be tested
and re-run on a saved ``episodes.csv`` without any video model.
"""
from __future__ import annotations

import warnings
from typing import Iterable

import numpy as np
import pandas as pd

from analysis.palette import method_order

#: columns of the per-episode table, in file order (extra columns follow them)
EPISODE_COLUMNS = ("provider", "task", "split", "epsilon", "episode", "raw_return", "std_return")
#: panels of the figure and rows of the Spearman table, in display order
SPLIT_ORDER = ("seen", "unseen")


def standardise(episodes: pd.DataFrame) -> pd.DataFrame:
    """Add ``std_return``: the z-score of ``raw_return`` within each (provider, task), over all epsilons.

    Population standard deviation (ddof=0), so each group has mean 0 and standard deviation 1 exactly.
    A group whose returns are all equal (e.g. the env reward on a task nobody solves) carries no
    ranking information: its ``std_return`` is 0, not NaN.
    """
    missing = [c for c in ("provider", "task", "raw_return") if c not in episodes.columns]
    if missing:
        raise ValueError(f"episodes table: expected columns provider, task, raw_return; missing {missing}")
    out = episodes.copy()
    grouped = out.groupby(["provider", "task"], sort=False)["raw_return"]
    mean = grouped.transform("mean")
    std = grouped.transform(lambda x: x.std(ddof=0))
    out["std_return"] = np.where(std > 0, (out["raw_return"] - mean) / std.where(std > 0, 1.0), 0.0)
    return out


def summarise(episodes: pd.DataFrame) -> pd.DataFrame:
    """Per (provider, split, epsilon): mean and standard error of ``std_return`` over the episodes of
    all tasks of the split (what the figure plots), the mean raw and env returns, and the counts."""
    agg = {"mean": ("std_return", "mean"), "sem": ("std_return", "sem"), "raw_mean": ("raw_return", "mean"),
           "n_episodes": ("std_return", "size"), "n_tasks": ("task", "nunique")}
    if "env_return" in episodes.columns:
        agg["env_return_mean"] = ("env_return", "mean")
    table = episodes.groupby(["provider", "split", "epsilon"], sort=False).agg(**agg).reset_index()
    return _ordered(table, ["split", "epsilon"])


def spearman(episodes: pd.DataFrame, by: Iterable[str] = ("provider", "split")) -> pd.DataFrame:
    """Spearman rank correlation between ``std_return`` and ``1 - epsilon`` within each group.

    +1: the learned return falls monotonically as the behaviour gets noisier (a good reward); 0: no
    relation; -1: noise is rewarded. Pooling tasks uses the per-task z-scores, so a task with larger
    raw scores does not dominate. A group with constant returns or one epsilon level gets NaN.
    """
    from scipy.stats import spearmanr

    by = list(by)
    rows = []
    for key, g in episodes.groupby(by, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        x, y = g["std_return"].to_numpy(float), 1.0 - g["epsilon"].to_numpy(float)
        rho = pval = np.nan
        if len(g) >= 3 and np.ptp(x) > 0 and np.ptp(y) > 0:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = spearmanr(x, y)
            rho, pval = float(res.statistic), float(res.pvalue)
        rows.append({**dict(zip(by, key)), "spearman": rho, "pvalue": pval, "n_episodes": len(g),
                     "n_tasks": g["task"].nunique()})
    table = pd.DataFrame(rows, columns=[*by, "spearman", "pvalue", "n_episodes", "n_tasks"])
    return _ordered(table, [c for c in by if c != "provider"])


def spearman_markdown(table: pd.DataFrame) -> str:
    """The Spearman table as markdown: one row per provider, one column per split (rho, p, episodes)."""
    splits = [s for s in SPLIT_ORDER if s in set(table["split"])] + \
        sorted(set(table["split"]) - set(SPLIT_ORDER))
    lines = ["| provider | " + " | ".join(f"{s}: rho (p, episodes)" for s in splits) + " |",
             "|---|" + "---|" * len(splits)]
    for provider in method_order(table["provider"]):
        cells = []
        for s in splits:
            row = table[(table["provider"] == provider) & (table["split"] == s)]
            if row.empty:
                cells.append("-")
            else:
                r = row.iloc[0]
                rho = "n/a" if np.isnan(r["spearman"]) else f"{r['spearman']:+.3f}"
                p = "" if np.isnan(r["pvalue"]) else f"p={r['pvalue']:.2g}, "
                cells.append(f"{rho} ({p}{int(r['n_episodes'])})")
        lines.append(f"| {provider} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _ordered(table: pd.DataFrame, then: list[str]) -> pd.DataFrame:
    """Rows in the suite's method order, then seen before unseen, then by the remaining keys."""
    if table.empty:
        return table.reset_index(drop=True)
    rank = {m: i for i, m in enumerate(method_order(table["provider"]))}
    split_rank = {s: i for i, s in enumerate(SPLIT_ORDER)}
    keys = table.assign(_p=table["provider"].map(rank))
    sort_cols = ["_p"]
    for c in then:
        if c == "split":
            keys["_s"] = keys["split"].map(lambda s: (split_rank.get(s, len(split_rank)), s))
            sort_cols.append("_s")
        else:
            sort_cols.append(c)
    return keys.sort_values(sort_cols, kind="stable").drop(columns=[c for c in ("_p", "_s") if c in keys]) \
        .reset_index(drop=True)
