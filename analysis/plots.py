"""The figures of a suite, drawn headless (Agg) from the tables of ``analysis.aggregate``.

Every function takes the numbers it plots (so the same numbers go to the figure CSV) and the
method -> colour map of ``analysis.palette``, and returns a matplotlib Figure; ``save`` writes it
as PNG and PDF atomically. The aggregate plots use rliable's own ``plot_utils``.

What a reader needs to weigh a figure is drawn into it, not left to the report:

- every success-rate axis, and every probability axis, runs from 0 to 1 on every panel: a panel that
  auto-scales to its own data (0-0.035 for one 0.2 evaluation in six runs) makes a rounding error look
  like a result, and panels with different ranges make gaps look bigger in one than in the other;
- a caption line under the figure (``add_caption``, texts from ``analysis.captions``) says what the
  interval is (95% stratified-bootstrap CI, or a standard error), how a run's score is defined, the
  budget and the runs; it is also written into the files' metadata (PNG "Description", PDF "Subject");
- an interval too narrow to draw as a bar (a zero-width CI, when every bootstrap resample gives the same
  value) is drawn as a thick tick in the method's colour, and a method without a CI (one run per task) as
  a hollow circle, so that "no bar" never has to be read as "no CI";
- lines that coincide (two methods at 0 everywhere, amp on the dense oracle) stay visible: every line
  carries a hollow marker of its method (a function of the name) and markers shrink with drawing order
  so that they nest; lines that are equal at every point also get staggered markers (each shows its
  marker at a different evaluation) and a note naming them.

Oracles (``analysis.oracles``) are drawn dashed and labelled "<name> (oracle)"; they never enter the
aggregate figures (``select_runs`` leaves them out).
"""

from __future__ import annotations

import os
import textwrap
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
from common.runs import EVAL_FILE, EVAL_TIME  # noqa: E402

FORMATS = ("png", "pdf")
DPI = 150
Colors = dict  # method -> RGB
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "h", "p", "*")
#: x-axis label of each aggregate metric; the optimality gap is 1 - score, not a score
METRIC_AXIS = {"Optimality Gap": "Optimality gap (1 - success rate)"}
#: (oracle?, status) -> line style: oracles dashed, unfinished runs dotted
LINESTYLES = {
    (False, "finished"): "-",
    (False, "unfinished"): ":",
    (True, "finished"): "--",
    (True, "unfinished"): "-.",
}
#: every success-rate and probability axis: the whole range, the same on every panel
UNIT_RANGE = (0.0, 1.0)
UNIT_TICKS = [0.0, 0.25, 0.5, 0.75, 1.0]
#: a CI narrower than this (on the 0-1 axis: under 3 pixels of a panel) is drawn as a tick, not a bar
NARROW_CI = 0.005
CAPTION_GID = "caption"
NARROW_CI_GID = "narrow-ci"
NO_CI_GID = "no-ci"
NARROW_CI_NOTE = (
    "Thick coloured tick: a CI too narrow to draw as a bar (under {w} wide; zero when every "
    "resample gives the same value)."
).format(w=NARROW_CI)
NO_CI_NOTE = "Hollow circle: no CI (one run per task leaves the bootstrap nothing to resample)."


def median_repeats_mean(num_tasks: int) -> bool:
    """Whether rliable's median is the mean by construction, so a Median panel would only repeat the Mean.

    rliable's ``aggregate_median`` is the median over tasks of each task's mean over runs, and its
    ``aggregate_mean`` the mean of the (rectangular) score matrix, i.e. the mean of those same task means.
    The median of one or two numbers is their mean, so with at most 2 tasks the two are equal for the point
    estimate and for every stratified-bootstrap resample (resampling runs within tasks keeps the task
    count), hence for the CI as well. From 3 tasks on they differ in general and both panels are drawn.
    The numbers themselves stay in ``figure_data.csv`` and the report; only the repeated panel goes.
    """
    return num_tasks <= 2


def panel_metrics(num_tasks: int | None) -> list[str]:
    """The aggregate metrics drawn as panels (all of them, less the Median when it repeats the Mean)."""
    names = list(AGGREGATE_METRICS)
    if num_tasks is not None and median_repeats_mean(num_tasks):
        names.remove("Median")
    return names


def method_marker(method: str) -> str:
    """Marker of one method, a function of its name only (like its colour)."""
    if method in KNOWN_METHODS:
        return MARKERS[KNOWN_METHODS.index(method) % len(MARKERS)]
    return MARKERS[zlib.crc32(method.encode("utf-8")) % len(MARKERS)]


def _marker_size(i: int) -> float:
    """Markers shrink with drawing order, so coinciding points nest as concentric rings."""
    return max(3.0, 10.0 - 1.4 * i)


def coinciding(curves: dict[str, tuple[np.ndarray, np.ndarray]]) -> list[list[str]]:
    """Groups (in the given order) of curves that are equal at every point: same x and same y values.

    A line drawn exactly on another hides it whatever its colour; the figures name such groups and stagger
    their markers rather than shift a line off its values.
    """
    groups: list[list[str]] = []
    for name, (x, y) in curves.items():
        for g in groups:
            gx, gy = curves[g[0]]
            if len(gx) == len(x) and np.allclose(gx, x) and np.allclose(gy, y, atol=1e-9, equal_nan=True):
                g.append(name)
                break
        else:
            groups.append([name])
    return [g for g in groups if len(g) > 1]


def _coinciding_note(groups: list[list[str]], curves: dict, what: str) -> str:
    """``"Same IQM at every frame: viper = diffusion_reward (0 throughout)."``, or ``""``."""
    parts = []
    for g in groups:
        y = np.asarray(curves[g[0]][1], dtype=float)
        flat = f" ({y[0]:g} throughout)" if len(y) and np.allclose(y, y[0]) else ""
        parts.append(" = ".join(display_name(m) for m in g) + flat)
    if not parts:
        return ""
    return f"{what} (markers staggered so each shows): " + "; ".join(parts) + "."


def _markevery(name: str, groups: list[list[str]], points: int):
    """Every line marks about 8 points (every ``step``-th); a line of a coinciding group of ``g`` lines marks
    every ``g * step``-th point from its own offset, so that the lines of the group show their markers side
    by side instead of on top of each other."""
    step = max(1, points // 8)
    for g in groups:
        if name in g:
            return (g.index(name) * step, len(g) * step)
    return step


def _mark_lines(lines, methods: list[str], points: int, groups: list[list[str]] = ()) -> None:
    """Give rliable's lines (one per method, in order) their method's hollow marker."""
    for i, (line, m) in enumerate(zip(lines, methods)):
        line.set_marker(method_marker(m))
        line.set_markersize(_marker_size(i))
        line.set_markerfacecolor("none")
        line.set_markeredgewidth(1.4)
        line.set_markevery(_markevery(m, list(groups), points))
        line.set_clip_on(False)  # a line at 0 or 1 sits on the axis limit: draw all of it


def _unit_axis(ax, axis: str = "x") -> None:
    """The whole 0-1 range with the same ticks on every panel."""
    labels = [f"{t:g}" for t in UNIT_TICKS]
    if axis == "x":
        ax.set_xlim(*UNIT_RANGE)
        ax.set_xticks(UNIT_TICKS, labels)
    else:
        ax.set_ylim(*UNIT_RANGE)
        ax.set_yticks(UNIT_TICKS, labels)


def _mark_intervals(ax, rows: list[tuple[float, float, float, float]], colors: list) -> set[str]:
    """Draw what a bar cannot show: ``rows`` are ``(y, point, lower, upper)``, in the row's colour.

    A CI narrower than ``NARROW_CI`` gets a thick tick over the row; a missing one (NaN) a hollow circle at
    the point. Returns the kinds drawn (their gids), so that the caption explains only what is there.
    """
    drawn = set()
    for (y, point, lo, hi), color in zip(rows, colors):
        if not np.isfinite([lo, hi]).all():
            ax.plot(
                [point],
                [y],
                marker="o",
                markersize=11,
                markerfacecolor="none",
                markeredgecolor=color,
                markeredgewidth=2.2,
                linestyle="none",
                clip_on=False,
                zorder=5,
                gid=NO_CI_GID,
            )
            drawn.add(NO_CI_GID)
        elif hi - lo < NARROW_CI:
            mid = (lo + hi) / 2  # a bar's height (rliable: 0.6 rows), 5 points wide, under the point tick
            ax.plot(
                [mid, mid],
                [y - 0.3, y + 0.3],
                linewidth=5,
                color=color,
                solid_capstyle="butt",
                clip_on=False,
                zorder=1.8,
                gid=NARROW_CI_GID,
            )
            drawn.add(NARROW_CI_GID)
    return drawn


def _interval_notes(drawn: set[str]) -> list[str]:
    return ([NARROW_CI_NOTE] if NARROW_CI_GID in drawn else []) + ([NO_CI_NOTE] if NO_CI_GID in drawn else [])


def add_caption(fig: plt.Figure, text: str, fontsize: float = 9.5) -> None:
    """Write ``text`` under everything already drawn, wrapped to the figure's drawn width.

    Placed in inches below the figure's tight bounding box (which ``save`` crops to), so it never overlaps
    an axis label whatever the figure's layout; the unwrapped text goes to the files' metadata.
    """
    if not text:
        return
    renderer = fig.canvas.get_renderer()
    bbox = fig.get_tightbbox(renderer)  # inches
    chars = max(50, int(bbox.width * 72 / (0.55 * fontsize)))
    wrapped = textwrap.fill(text, chars, break_on_hyphens=False, break_long_words=False)
    fig.text(
        bbox.x0 / fig.get_figwidth(),
        (bbox.y0 - 0.15) / fig.get_figheight(),
        wrapped,
        ha="left",
        va="top",
        fontsize=fontsize,
        color="0.15",
        gid=CAPTION_GID,
    )


def figure_caption(fig: plt.Figure) -> str:
    """The caption written by :func:`add_caption`, on one line ("" when the figure has none)."""
    text = next((t.get_text() for t in fig.texts if t.get_gid() == CAPTION_GID), "")
    return " ".join(text.split("\n"))


def _caption(base: str, *notes: str) -> str:
    return " ".join(part for part in (base, *notes) if part)


def save(fig: plt.Figure, out_dir: str | os.PathLike, stem: str) -> list[Path]:
    """Write ``<stem>.png`` and ``<stem>.pdf`` (atomically) and close the figure.

    The figure's title also goes into each file's metadata ("Title"), and its caption ("Description" in
    the PNG, "Subject" in the PDF), so what a file shows, on what budget and with which interval, can be
    read (and tested) without looking at the picture. The PDF carries no creation date, so regenerating
    figures from the same results gives the same bytes (a shipped figure changes in git only when its
    numbers do).
    """
    paths = []
    caption = figure_caption(fig)
    for fmt in FORMATS:
        meta = {"Title": figure_title(fig)}
        if caption:
            meta["Subject" if fmt == "pdf" else "Description"] = caption
        if fmt == "pdf":
            meta["CreationDate"] = None
        path = Path(out_dir) / f"{stem}.{fmt}"
        atomic_write(
            path, lambda f, fmt=fmt, meta=meta: fig.savefig(f, format=fmt, dpi=DPI, bbox_inches="tight", metadata=meta)
        )
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


def aggregates(
    estimates: pd.DataFrame,
    methods: list[str],
    colors: Colors,
    title: str,
    caption: str = "",
    num_tasks: int | None = None,
) -> plt.Figure:
    """IQM / mean / (median) / optimality gap with CIs, one row per method (rliable), all on one 0-1 axis.

    With ``num_tasks`` given, the Median panel is left out when it equals the Mean by construction
    (:func:`median_repeats_mean`) and the caption says why.
    """
    names = panel_metrics(num_tasks)
    point, interval = {}, {}
    for m in methods:
        rows = estimates[estimates["method"] == m].set_index("metric").loc[names]
        point[m] = rows["value"].to_numpy()
        interval[m] = rows[["lower", "upper"]].to_numpy().T
    # rliable draws no bar for a NaN interval but warns; draw it as a point and mark it below
    drawable = {m: np.where(np.isfinite(iv), iv, point[m][None, :]) for m, iv in interval.items()}
    row_height = max(0.5, 2.0 / len(methods))
    height = row_height * len(methods)
    fig, axes = plot_utils.plot_interval_estimates(
        point,
        drawable,
        metric_names=names,
        algorithms=methods,
        colors=colors,
        xlabel="",
        subfigure_width=3.8,
        row_height=row_height,
        xlabel_y_coordinate=-0.6 / height,
        wspace=0.25,
    )
    drawn: set[str] = set()
    for i, (ax, name) in enumerate(zip(np.atleast_1d(axes), names)):
        ax.set_xlabel(METRIC_AXIS.get(name, "Success rate"), fontsize="large")  # the gap is not a score
        _unit_axis(ax, "x")
        ax.tick_params(axis="x", labelsize="large")
        drawn |= _mark_intervals(
            ax, [(y, point[m][i], *interval[m][:, i]) for y, m in enumerate(methods)], [colors[m] for m in methods]
        )
    # rliable sizes the figure from the number of rows: place the title in inches above the axes.
    fig.suptitle(title, fontsize="xx-large", y=1.0 + 0.55 / height, va="bottom")
    dropped = (
        ""
        if "Median" in names or num_tasks is None
        else f"No Median panel: with {num_tasks} task{'s' if num_tasks != 1 else ''} the median of the task "
        "means is their mean, so it would repeat the Mean panel."
    )
    add_caption(fig, _caption(caption, *_interval_notes(drawn), dropped))
    return fig


def improvement(poi: pd.DataFrame, colors: Colors, title: str, color_by: str = "y", caption: str = "") -> plt.Figure:
    """P(X > Y) with CIs for each row's pair (rliable): P(reference > Y), or P(X > baseline) with
    ``color_by="x"`` (each bar in the colour of the method that varies)."""
    keys = [f"{x}{PAIR_SEPARATOR}{y}" for x, y in zip(poi["x"], poi["y"])]
    point = dict(zip(keys, poi["value"].to_numpy()))
    # a pair without a CI (a one-seed method, NaN bounds) gets a zero-width bar at its point (rliable's twin
    # axis keeps the same rows as the left one; NaN bars would shift it) and a hollow circle drawn below
    interval = {
        k: np.array([lo, hi]) if np.isfinite([lo, hi]).all() else np.array([v, v])
        for k, v, lo, hi in zip(keys, poi["value"], poi["lower"], poi["upper"])
    }
    bar_colors = [colors[m] for m in poi[color_by]]
    fig, ax = plt.subplots(figsize=(6.5, 0.65 * len(keys) + 1.4))
    plot_utils.plot_probability_of_improvement(
        point,
        interval,
        pair_separator=PAIR_SEPARATOR,
        ax=ax,
        colors=bar_colors,
        xticks=UNIT_TICKS,
        left_ylabel="Algorithm X",
        right_ylabel="Algorithm Y",
        ticklabelsize="large",
        labelsize="large",
    )
    _unit_axis(ax, "x")
    ax.axvline(0.5, color="grey", linestyle=":", linewidth=1)
    drawn = _mark_intervals(
        ax, [(y, v, lo, hi) for y, (v, lo, hi) in enumerate(zip(poi["value"], poi["lower"], poi["upper"]))], bar_colors
    )
    ax.set_title(title, fontsize="large", pad=24)
    add_caption(fig, _caption(caption, *_interval_notes(drawn)))
    return fig


def improvement_heatmap(table: pd.DataFrame, title: str, caption: str = "") -> plt.Figure:
    """Point estimates of P(row > column) for every ordered pair of methods."""
    n = len(table)
    fig, ax = plt.subplots(figsize=(1.1 * n + 2.5, 0.9 * n + 1.5))
    sns.heatmap(
        table,
        annot=True,
        fmt=".2f",
        vmin=0,
        vmax=1,
        cmap="RdBu_r",
        center=0.5,
        square=True,
        cbar_kws={"label": "P(X > Y)"},
        ax=ax,
        annot_kws={"fontsize": 10},
    )
    ax.set_xlabel("Algorithm Y")
    ax.set_ylabel("Algorithm X")
    ax.set_title(title)
    ax.tick_params(axis="x", labelrotation=35)
    ax.tick_params(axis="y", labelrotation=0)
    plt.setp(ax.get_xticklabels(), ha="right", rotation_mode="anchor")
    add_caption(fig, caption)
    return fig


def profiles(
    profile: dict, cis: dict, taus: np.ndarray, methods: list[str], colors: Colors, title: str, caption: str = ""
) -> plt.Figure:
    """Fraction of runs with success rate above tau, with CIs (rliable)."""
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    plot_utils.plot_performance_profiles(
        {m: profile[m] for m in methods},
        taus,
        performance_profile_cis={m: cis[m] for m in methods},
        colors=colors,
        ax=ax,
        xlabel=r"Success rate ($\tau$)",
        ylabel=r"Fraction of runs with score $> \tau$",
        labelsize="large",
        ticklabelsize="large",
    )
    curves = {m: (np.asarray(taus), np.asarray(profile[m])) for m in methods}
    groups = coinciding(curves)
    _mark_lines(ax.get_lines(), methods, len(taus), groups)
    _unit_axis(ax, "x")
    _unit_axis(ax, "y")
    ax.legend(loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize="medium", frameon=False)
    ax.set_title(title)
    add_caption(fig, _caption(caption, _coinciding_note(groups, curves, "Same profile")))
    return fig


def _curve_arrays(curves: pd.DataFrame, methods: list[str], frames: np.ndarray) -> tuple[dict, dict]:
    point, interval = {}, {}
    for m in methods:
        rows = curves[curves["method"] == m].set_index("frame").loc[frames]
        point[m] = rows["value"].to_numpy()
        interval[m] = rows[["lower", "upper"]].to_numpy().T
    return point, interval


def _iqm_panel(
    ax,
    x: dict[str, np.ndarray],
    point: dict,
    interval: dict,
    methods: list[str],
    colors: Colors,
    xlabel: str,
    groups: list[list[str]],
) -> None:
    """rliable's sample-efficiency curve, one method at a time so that each may have its own x values."""
    for m in methods:
        plot_utils.plot_sample_efficiency_curve(
            x[m],
            {m: point[m]},
            {m: interval[m]},
            algorithms=[m],
            colors=colors,
            ax=ax,
            xlabel=xlabel,
            ylabel="IQM success rate",
            labelsize="large",
            ticklabelsize="large",
        )
    _mark_lines(ax.get_lines(), methods, max(len(v) for v in x.values()), groups)
    _unit_axis(ax, "y")
    ax.tick_params(axis="y", labelleft=True)


def sample_efficiency(
    curves: pd.DataFrame, methods: list[str], colors: Colors, title: str, caption: str = ""
) -> plt.Figure:
    """IQM of the success rate over frames with CI bands (rliable)."""
    frames = np.sort(curves["frame"].unique())
    scale, label = _frames_label(frames)
    point, interval = _curve_arrays(curves, methods, frames)
    groups = coinciding({m: (frames, point[m]) for m in methods})
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    _iqm_panel(ax, {m: frames / scale for m in methods}, point, interval, methods, colors, label, groups)
    ax.legend(loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize="medium", frameon=False)
    ax.set_title(title)
    note = _coinciding_note(groups, {m: (frames, point[m]) for m in methods}, "Same IQM at every frame")
    add_caption(fig, _caption(caption, note))
    return fig


def sample_efficiency_wall_clock(
    curves: pd.DataFrame,
    hours: pd.DataFrame,
    methods: list[str],
    colors: Colors,
    title: str,
    caption: str = "",
    machine: str = "",
) -> plt.Figure:
    """The IQM curves against frames (left) and against training hours (right), on one 0-1 axis.

    A video reward labels every episode with a model, which costs time per frame that a frame axis does not
    show; the right panel draws the very same IQM and CIs at the median hours the method's runs took to
    reach each frame (``hours``: ``analysis.aggregate.hours_over_frames``), with a whisker from the fastest
    to the slowest run at the last point. Methods without recorded hours are drawn on the left only.
    """
    frames = np.sort(curves["frame"].unique())
    scale, label = _frames_label(frames)
    point, interval = _curve_arrays(curves, methods, frames)
    groups = coinciding({m: (frames, point[m]) for m in methods})
    timed = [m for m in methods if m in set(hours["method"])]
    fig, (left, right) = plt.subplots(1, 2, figsize=(13.5, 5.0))
    _iqm_panel(left, {m: frames / scale for m in methods}, point, interval, methods, colors, label, groups)
    left.set_title("against frames" + ("\n" if machine else ""), fontsize="large")
    x, ends = {}, {}
    for m in timed:
        h = hours[hours["method"] == m].set_index("frame").loc[frames]
        x[m] = h["value"].to_numpy()
        ends[m] = (h["value"].iloc[-1], h["lower"].iloc[-1], h["upper"].iloc[-1], point[m][-1])
    if timed:
        _iqm_panel(
            right,
            x,
            {m: point[m] for m in timed},
            {m: interval[m] for m in timed},
            timed,
            colors,
            "Training hours (median over the method's runs)",
            [g for g in groups if set(g) <= set(timed)],
        )
        for i, m in enumerate(timed):
            value, lo, hi, y = ends[m]
            right.errorbar(
                [value],
                [y],
                xerr=[[value - lo], [hi - value]],
                color=colors[m],
                capsize=4,
                linewidth=1.4,
                clip_on=False,
                zorder=3 + i,
            )
        right.set_xlim(left=0)
    else:
        right.text(
            0.5,
            0.5,
            f"no run recorded its training time ({EVAL_FILE} {EVAL_TIME})",
            ha="center",
            va="center",
            transform=right.transAxes,
        )
    right.set_title("against wall-clock training time" + (f"\non {machine}" if machine else ""), fontsize="large")
    handles = [
        Line2D(
            [], [], color=colors[m], linewidth=2, marker=method_marker(m), markerfacecolor="none", markersize=8, label=m
        )
        for m in methods
    ]
    right.legend(handles=handles, loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize="medium", frameon=False)
    fig.suptitle(title, fontsize="x-large")
    fig.tight_layout()
    note = _coinciding_note(groups, {m: (frames, point[m]) for m in methods}, "Same IQM at every frame")
    untimed = (
        ""
        if len(timed) == len(methods)
        else "No recorded training time, left panel only: " + ", ".join(m for m in methods if m not in timed) + "."
    )
    # the cost in numbers: where each method's curve ends on the hours axis (curves at 0 end on top of each other)
    cost = (
        ""
        if not timed
        else f"Median training hours to {int(frames[-1]):,} frames: "
        + ", ".join(f"{m} {ends[m][0]:.2f} ({ends[m][1]:.2f}-{ends[m][2]:.2f})" for m in timed)
        + "."
    )
    add_caption(fig, _caption(caption, cost, note, untimed))
    return fig


def learning_curves(
    rows: pd.DataFrame,
    tasks: list[str],
    methods: list[str],
    colors: Colors,
    title: str,
    ncols: int = 3,
    caption: str = "",
) -> plt.Figure:
    """One panel per task: mean success rate over seeds with a standard-error band.

    The same mean and standard error (ddof 1) as ``analysis.aggregate.learning_curves``. Finished
    runs solid, runs still in progress dotted (their own mean), oracles dashed and labelled
    "<name> (oracle)"; each method carries its hollow marker so that coinciding lines stay visible, and
    lines equal at every evaluation get staggered markers and a note under their panel. Panels are large
    (6 x 4.4 in) with tick labels on each, every y axis 0-1.
    """
    ncols = max(1, min(ncols, len(tasks)))
    nrows = int(np.ceil(len(tasks) / ncols))
    unfinished = bool((rows["status"] == "unfinished").any())
    # Title and legend sit in a band reserved above the panels, sized in inches.
    legend_rows = int(np.ceil((len(methods) + unfinished) / 6))
    title_lines = title.count("\n") + 1
    band = 0.35 + 0.3 * title_lines + 0.35 * legend_rows
    panel_height = 5.0  # 4.4 in of axes, with its labels and a line of notes under it
    fig, axes = plt.subplots(nrows, ncols, figsize=(6.2 * ncols, panel_height * nrows + band), squeeze=False)
    scale, label = _frames_label(rows["frame"].to_numpy())
    stats = (
        rows.groupby(["task", "method", "status", "frame"], sort=True)["value"].agg(mean="mean", se="sem").reset_index()
    )
    for ax, task in zip(axes.flat, tasks):
        lines = {}
        for i, m in enumerate(methods):
            for status in ("finished", "unfinished"):
                g = stats[(stats["task"] == task) & (stats["method"] == m) & (stats["status"] == status)]
                if not g.empty:
                    key = display_name(m) + (" (unfinished)" if status == "unfinished" else "")
                    lines[key] = (i, m, status, g)
        curves = {k: (v[3]["frame"].to_numpy(float), v[3]["mean"].to_numpy(float)) for k, v in lines.items()}
        groups = coinciding(curves)
        for key, (i, m, status, g) in lines.items():
            x, y, se = g["frame"].to_numpy() / scale, g["mean"].to_numpy(), g["se"].fillna(0).to_numpy()
            ax.plot(
                x,
                y,
                color=colors[m],
                linestyle=LINESTYLES[(is_oracle(m), status)],
                linewidth=1.8,
                marker=method_marker(m),
                markersize=_marker_size(i),
                markerfacecolor="none",
                markeredgewidth=1.4,
                markevery=_markevery(key, groups, len(x)),
                zorder=3 + i,
                clip_on=False,
            )
            ax.fill_between(x, np.clip(y - se, 0, 1), np.clip(y + se, 0, 1), color=colors[m], alpha=0.15, linewidth=0)
        ax.set_title(task, fontsize="x-large")
        ax.set_xlabel(label, fontsize="large")
        ax.set_ylabel("Success rate", fontsize="large")
        _unit_axis(ax, "y")
        ax.tick_params(labelsize="large", labelleft=True, labelbottom=True)
        ax.spines["bottom"].set_position(("outward", 6))  # points at 0 stay off the axis line
        ax.spines[["top", "right"]].set_visible(False)
        ax.grid(True, alpha=0.25)
        note = _coinciding_note(groups, curves, "Same curve")
        if note:  # under the x label, whatever its size
            ax.annotate(
                textwrap.fill(note, 75, break_on_hyphens=False),
                xy=(0.5, 0),
                xycoords=ax.xaxis.label,
                xytext=(0, -6),
                textcoords="offset points",
                ha="center",
                va="top",
                fontsize="medium",
            )
    for ax in list(axes.flat)[len(tasks) :]:
        ax.set_visible(False)
    handles = [
        Line2D(
            [],
            [],
            color=colors[m],
            linewidth=2.5,
            label=display_name(m),
            linestyle=LINESTYLES[(is_oracle(m), "finished")],
            marker=method_marker(m),
            markerfacecolor="none",
            markersize=9,
        )
        for m in methods
    ]
    if unfinished:
        handles.append(Line2D([], [], color="black", linestyle=":", label="unfinished runs"))
    legend_cols = int(np.ceil(len(handles) / legend_rows))
    height = fig.get_figheight()
    fig.tight_layout(rect=(0, 0, 1, 1 - band / height), h_pad=2.0, w_pad=2.5)
    fig.suptitle(title + "  (mean and standard error over seeds)", fontsize="x-large", y=1 - 0.08 / height, va="top")
    fig.legend(
        handles=handles,
        loc="upper center",
        ncol=legend_cols,
        frameon=False,
        fontsize="large",
        bbox_to_anchor=(0.5, 1 - (0.25 + 0.3 * title_lines) / height),
    )
    add_caption(fig, caption)
    return fig
