"""The figures of a suite, drawn headless (Agg) from the tables of ``analysis.aggregate``.

Every function takes the numbers it plots (so the same numbers go to the figure CSV) and the
method -> colour map of ``analysis.palette``, and returns a matplotlib Figure; ``save`` writes it
as PNG and PDF atomically. The aggregate plots use rliable's own ``plot_utils``.

Lines that coincide (two methods at 0 everywhere, say) must stay visible, so every line carries a
hollow marker of its method (a function of the name), and markers shrink with drawing order so
coinciding ones nest instead of hiding each other. Oracles (``analysis.oracles``) are drawn dashed and
labelled "<name> (oracle)"; they never enter the aggregate figures (``select_runs`` leaves them out).
"""
from __future__ import annotations

import os
import zlib
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: figures are files, never windows

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from rliable import plot_utils  # noqa: E402

from analysis.aggregate import AGGREGATE_METRICS, PAIR_SEPARATOR  # noqa: E402
from analysis.oracles import display_name, is_oracle  # noqa: E402
from analysis.palette import KNOWN_METHODS  # noqa: E402
from common.io import atomic_write  # noqa: E402

FORMATS = ("png", "pdf")
DPI = 150
Colors = dict  # method -> RGB
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "h", "p", "*")
#: x-axis label of each aggregate metric; the optimality gap is 1 - score, not a score
METRIC_AXIS = {"Optimality Gap": "Optimality gap (1 - success rate)"}
#: (oracle?, status) -> line style: oracles dashed, unfinished runs dotted
LINESTYLES = {(False, "finished"): "-", (False, "unfinished"): ":",
              (True, "finished"): "--", (True, "unfinished"): "-."}


def method_marker(method: str) -> str:
    """Marker of one method, a function of its name only (like its colour)."""
    if method in KNOWN_METHODS:
        return MARKERS[KNOWN_METHODS.index(method) % len(MARKERS)]
    return MARKERS[zlib.crc32(method.encode("utf-8")) % len(MARKERS)]


def _marker_size(i: int) -> float:
    """Markers shrink with drawing order, so coinciding points nest as concentric rings."""
    return max(3.0, 10.0 - 1.4 * i)


def _mark_lines(lines, methods: list[str], points: int) -> None:
    """Give rliable's lines (one per method, in order) their method's hollow marker."""
    for i, (line, m) in enumerate(zip(lines, methods)):
        line.set_marker(method_marker(m))
        line.set_markersize(_marker_size(i))
        line.set_markerfacecolor("none")
        line.set_markeredgewidth(1.4)
        line.set_markevery(max(1, points // 10))


def save(fig: plt.Figure, out_dir: str | os.PathLike, stem: str) -> list[Path]:
    """Write ``<stem>.png`` and ``<stem>.pdf`` (atomically) and close the figure.

    The figure's title also goes into each file's metadata ("Title"), so what a file shows, and on
    what budget, can be read (and tested) without looking at the picture. The PDF carries no creation
    date, so regenerating figures from the same results gives the same bytes (a shipped figure changes
    in git only when its numbers do).
    """
    paths = []
    for fmt in FORMATS:
        meta = {"Title": figure_title(fig)} | ({"CreationDate": None} if fmt == "pdf" else {})
        path = Path(out_dir) / f"{stem}.{fmt}"
        atomic_write(path, lambda f, fmt=fmt, meta=meta: fig.savefig(f, format=fmt, dpi=DPI,
                                                                     bbox_inches="tight", metadata=meta))
        paths.append(path)
    plt.close(fig)
    return paths


def figure_title(fig: plt.Figure) -> str:
    """The suptitle, else the first axes title (one line: newlines become " | ")."""
    text = fig.get_suptitle() or next((ax.get_title() for ax in fig.axes if ax.get_title()), "")
    return text.replace("\n", " | ")


def _frames_label(frames: np.ndarray) -> tuple[float, str]:
    """Scale and axis label so frame counts read as plain numbers (k or M)."""
    top = float(np.max(frames)) if len(frames) else 0.0
    if top >= 1e6:
        return 1e6, "Frames (millions)"
    if top >= 1e3:
        return 1e3, "Frames (thousands)"
    return 1.0, "Frames"


def aggregates(estimates: pd.DataFrame, methods: list[str], colors: Colors, title: str) -> plt.Figure:
    """IQM / mean / median / optimality gap with CIs, one row per method (rliable)."""
    names = list(AGGREGATE_METRICS)
    point, interval = {}, {}
    for m in methods:
        rows = estimates[estimates["method"] == m].set_index("metric").loc[names]
        point[m] = rows["value"].to_numpy()
        interval[m] = rows[["lower", "upper"]].to_numpy().T
    row_height = max(0.45, 1.6 / len(methods))
    height = row_height * len(methods)
    fig, axes = plot_utils.plot_interval_estimates(
        point, interval, metric_names=names, algorithms=methods, colors=colors,
        xlabel="", subfigure_width=3.6, row_height=row_height,
        xlabel_y_coordinate=-0.6 / height, wspace=0.2)
    for ax, name in zip(np.atleast_1d(axes), names):  # one label per panel: the gap is not a score
        ax.set_xlabel(METRIC_AXIS.get(name, "Success rate"), fontsize="large")
    # rliable sizes the figure from the number of rows: place the title in inches above the axes.
    fig.suptitle(title, fontsize="xx-large", y=1.0 + 0.55 / height, va="bottom")
    return fig


def improvement(poi: pd.DataFrame, colors: Colors, title: str, color_by: str = "y") -> plt.Figure:
    """P(X > Y) with CIs for each row's pair (rliable): P(reference > Y), or P(X > baseline) with
    ``color_by="x"`` (each bar in the colour of the method that varies)."""
    keys = [f"{x}{PAIR_SEPARATOR}{y}" for x, y in zip(poi["x"], poi["y"])]
    point = dict(zip(keys, poi["value"].to_numpy()))
    # a pair without a CI (a one-seed method, NaN bounds) gets a zero-width bar at its point: nothing is
    # drawn, and rliable's twin axis keeps the same rows as the left one (NaN bars would shift it)
    interval = {k: np.array([lo, hi]) if np.isfinite([lo, hi]).all() else np.array([v, v])
                for k, v, lo, hi in zip(keys, poi["value"], poi["lower"], poi["upper"])}
    fig, ax = plt.subplots(figsize=(5.5, 0.6 * len(keys) + 1.2))
    plot_utils.plot_probability_of_improvement(
        point, interval, pair_separator=PAIR_SEPARATOR, ax=ax,
        colors=[colors[m] for m in poi[color_by]], xticks=[0.0, 0.25, 0.5, 0.75, 1.0],
        left_ylabel="Algorithm X", right_ylabel="Algorithm Y", ticklabelsize="large", labelsize="large")
    ax.set_xlim(0, 1)
    ax.axvline(0.5, color="grey", linestyle=":", linewidth=1)
    ax.set_title(title, fontsize="large", pad=24)
    return fig


def improvement_heatmap(table: pd.DataFrame, title: str) -> plt.Figure:
    """Point estimates of P(row > column) for every ordered pair of methods."""
    n = len(table)
    fig, ax = plt.subplots(figsize=(1.1 * n + 2.5, 0.9 * n + 1.5))
    sns.heatmap(table, annot=True, fmt=".2f", vmin=0, vmax=1, cmap="RdBu_r", center=0.5, square=True,
                cbar_kws={"label": "P(X > Y)"}, ax=ax, annot_kws={"fontsize": 10})
    ax.set_xlabel("Algorithm Y")
    ax.set_ylabel("Algorithm X")
    ax.set_title(title)
    ax.tick_params(axis="x", labelrotation=35)
    ax.tick_params(axis="y", labelrotation=0)
    plt.setp(ax.get_xticklabels(), ha="right", rotation_mode="anchor")
    return fig


def profiles(profile: dict, cis: dict, taus: np.ndarray, methods: list[str], colors: Colors,
             title: str) -> plt.Figure:
    """Fraction of runs with success rate above tau, with CIs (rliable)."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    plot_utils.plot_performance_profiles(
        {m: profile[m] for m in methods}, taus, performance_profile_cis={m: cis[m] for m in methods},
        colors=colors, ax=ax, xlabel=r"Success rate ($\tau$)",
        ylabel=r"Fraction of runs with score $> \tau$", labelsize="large", ticklabelsize="large")
    _mark_lines(ax.get_lines(), methods, len(taus))
    ax.legend(loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize="medium", frameon=False)
    ax.set_title(title)
    return fig


def sample_efficiency(curves: pd.DataFrame, methods: list[str], colors: Colors, title: str) -> plt.Figure:
    """IQM of the success rate over frames with CI bands (rliable)."""
    frames = np.sort(curves["frame"].unique())
    scale, label = _frames_label(frames)
    point, interval = {}, {}
    for m in methods:
        rows = curves[curves["method"] == m].set_index("frame").loc[frames]
        point[m] = rows["value"].to_numpy()
        interval[m] = rows[["lower", "upper"]].to_numpy().T
    fig, ax = plt.subplots(figsize=(7, 4.5))
    plot_utils.plot_sample_efficiency_curve(
        frames / scale, point, interval, algorithms=methods, colors=colors, ax=ax,
        xlabel=label, ylabel="IQM success rate", labelsize="large", ticklabelsize="large")
    _mark_lines(ax.get_lines(), methods, len(frames))
    ax.legend(loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize="medium", frameon=False)
    ax.set_title(title)
    return fig


def learning_curves(rows: pd.DataFrame, tasks: list[str], methods: list[str], colors: Colors,
                    title: str, ncols: int = 4) -> plt.Figure:
    """One panel per task: mean success rate over seeds with a standard-error band.

    The same mean and standard error (ddof 1) as ``analysis.aggregate.learning_curves``. Finished
    runs solid, runs still in progress dotted (their own mean), oracles dashed and labelled
    "<name> (oracle)"; each method carries its hollow marker so that coinciding lines stay visible.
    """
    ncols = max(1, min(ncols, len(tasks)))
    nrows = int(np.ceil(len(tasks) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.3 * nrows), squeeze=False,
                             sharey=True)
    scale, label = _frames_label(rows["frame"].to_numpy())
    stats = (rows.groupby(["task", "method", "status", "frame"], sort=True)["value"]
             .agg(mean="mean", se="sem").reset_index())
    for ax, task in zip(axes.flat, tasks):
        for i, m in enumerate(methods):
            for status in ("finished", "unfinished"):
                g = stats[(stats["task"] == task) & (stats["method"] == m) & (stats["status"] == status)]
                if g.empty:
                    continue
                x, y, se = g["frame"].to_numpy() / scale, g["mean"].to_numpy(), g["se"].fillna(0).to_numpy()
                ax.plot(x, y, color=colors[m], linestyle=LINESTYLES[(is_oracle(m), status)], linewidth=1.8,
                        marker=method_marker(m), markersize=_marker_size(i), markerfacecolor="none",
                        markeredgewidth=1.3, markevery=max(1, len(x) // 8), zorder=3 + i)
                ax.fill_between(x, y - se, y + se, color=colors[m], alpha=0.15, linewidth=0)
        ax.set_title(task, fontsize="large")
        ax.set_xlabel(label)
        ax.set_ylabel("Success rate")
        ax.set_ylim(-0.03, 1.03)
        ax.grid(True, alpha=0.25)
    for ax in list(axes.flat)[len(tasks):]:
        ax.set_visible(False)
    handles = [Line2D([], [], color=colors[m], linewidth=2.5, label=display_name(m),
                      linestyle=LINESTYLES[(is_oracle(m), "finished")], marker=method_marker(m),
                      markerfacecolor="none", markersize=8) for m in methods]
    if (rows["status"] == "unfinished").any():
        handles.append(Line2D([], [], color="black", linestyle=":", label="unfinished runs"))
    # Title and legend sit in a band reserved above the panels, sized in inches.
    legend_rows = int(np.ceil(len(handles) / 6))
    legend_cols = int(np.ceil(len(handles) / legend_rows))
    title_lines = title.count("\n") + 1
    band = 0.35 + 0.25 * title_lines + 0.32 * legend_rows
    height = fig.get_figheight()
    fig.tight_layout(rect=(0, 0, 1, 1 - band / height))
    fig.suptitle(title + "  (mean and standard error over seeds)", fontsize="x-large",
                 y=1 - 0.08 / height, va="top")
    fig.legend(handles=handles, loc="upper center", ncol=legend_cols, frameon=False, fontsize="large",
               bbox_to_anchor=(0.5, 1 - (0.25 + 0.25 * title_lines) / height))
    return fig
