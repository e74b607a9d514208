"""Pure Altair chart builders: small aggregated frames in, alt.Chart out.

No Streamlit and no file reading here; every builder is tested through
.to_dict(). Builders take already-aggregated data (per type, per bucket, per
step), never per-sample rows, so a 100k-sample run still draws a few dozen marks.
"""
from __future__ import annotations

import altair as alt
import pandas as pd

PCT = alt.Axis(format="%")
RUN_SCALE = alt.Scale(scheme="tableau10")


def _grouped_bars(frame: pd.DataFrame, x: str, x_title: str, order: list[str] | None,
                  value: str = "accuracy", low: str = "low", high: str = "high",
                  title: str = "", colors: alt.Scale | None = None,
                  run_order: list[str] | None = None) -> alt.LayerChart:
    """Bars of `value` per x, one bar per run side by side, with [low, high] error bars.

    colors: a ``run_colors`` scale (default: tableau10 over the runs shown); run_order: the
    runs' order within a group (default: by name)."""
    base = alt.Chart(frame).encode(
        x=alt.X(f"{x}:N", title=x_title, sort=order, axis=alt.Axis(labelAngle=0)),
        xOffset=alt.XOffset("run:N", sort=run_order) if run_order else alt.XOffset("run:N"),
        color=alt.Color("run:N", scale=colors or RUN_SCALE, legend=alt.Legend(orient="top")),
        tooltip=[alt.Tooltip("run:N"), alt.Tooltip(f"{x}:N"),
                 alt.Tooltip(f"{value}:Q", format=".1%"), alt.Tooltip(f"{low}:Q", format=".1%"),
                 alt.Tooltip(f"{high}:Q", format=".1%"), alt.Tooltip("n:Q")])
    bars = base.mark_bar().encode(y=alt.Y(f"{value}:Q", title="accuracy", axis=PCT,
                                          scale=alt.Scale(domain=[0, 1])))
    whiskers = base.mark_rule(strokeWidth=1.5).encode(
        y=alt.Y(f"{low}:Q"), y2=alt.Y2(f"{high}:Q"), color=alt.value("black"))
    return alt.layer(bars, whiskers).properties(title=title, height=320)


def accuracy_by_type(table: pd.DataFrame, baseline: str, candidate: str,
                     order: list[str] | None = None,
                     colors: alt.Scale | None = None) -> alt.LayerChart:
    """Grouped bars: per-type accuracy of baseline vs candidate with Wilson 95% intervals.

    table: stats.paired_table output (type, n, base_acc, base_low, base_high, cand_...);
    colors: a ``run_colors`` scale (default: tableau10 over the two runs).
    """
    long = pd.concat([
        pd.DataFrame({"type": table["type"], "run": name, "n": table["n"],
                      "accuracy": table[f"{side}_acc"], "low": table[f"{side}_low"],
                      "high": table[f"{side}_high"]})
        for side, name in (("base", baseline), ("cand", candidate))], ignore_index=True)
    return _grouped_bars(long, "type", "problem type", order, colors=colors,
                         run_order=[baseline, candidate],
                         title="Accuracy by type (bars: Wilson 95% interval)")


def paired_difference(table: pd.DataFrame, alpha: float = 0.05,
                      order: list[str] | None = None) -> alt.Chart:
    """Candidate minus baseline accuracy per type, coloured by exact-McNemar significance."""
    frame = table.assign(significant=(table["p_value"] < alpha).map(
        {True: f"p < {alpha:g}", False: f"p ≥ {alpha:g}"}))
    return alt.Chart(frame).mark_bar().encode(
        x=alt.X("type:N", title="problem type", sort=order, axis=alt.Axis(labelAngle=0)),
        y=alt.Y("diff:Q", title="candidate − baseline", axis=PCT),
        color=alt.Color("significant:N", title="exact McNemar",
                        scale=alt.Scale(domain=[f"p < {alpha:g}", f"p ≥ {alpha:g}"],
                                        range=["#2e7d32", "#b0bec5"])),
        tooltip=[alt.Tooltip("type:N"), alt.Tooltip("diff:Q", format="+.1%"),
                 alt.Tooltip("p_value:Q", format=".4f"), alt.Tooltip("base_only:Q"),
                 alt.Tooltip("cand_only:Q"), alt.Tooltip("n:Q")],
    ).properties(title="Paired difference per type", height=260)


def accuracy_by_bucket(frame: pd.DataFrame, by: str, title: str, order: list[str],
                       colors: alt.Scale | None = None,
                       run_order: list[str] | None = None) -> alt.LayerChart:
    """Grouped bars per bucket (answer length, operand size); frame: run, by, accuracy, low, high, n."""
    return _grouped_bars(frame, by, title, order, title=f"Accuracy by {title}", colors=colors,
                         run_order=run_order)


def accuracy_by_rule(frame: pd.DataFrame, order: list[str],
                     colors: alt.Scale | None = None) -> alt.LayerChart:
    """Each grading rule side by side per run; frame: run, rule, accuracy, low, high, n."""
    return _grouped_bars(frame, "rule", "grading rule", order, title="Accuracy under each rule",
                         colors=colors)


def squad_scores(frame: pd.DataFrame, thresholds: dict[str, float]) -> alt.HConcatChart:
    """F1 and EM per run (bars) with the 90%-of-base threshold as a red line.

    frame: run, metric ('F1'|'EM'), value (0..100); thresholds: {'F1': x, 'EM': y}.
    """
    charts = []
    for metric in ("F1", "EM"):
        part = frame[frame["metric"] == metric]
        bars = alt.Chart(part).mark_bar().encode(
            # every run labelled (no thinning to every other bar), and a legend for many runs
            x=alt.X("run:N", title=None, sort=None,
                    axis=alt.Axis(labelAngle=-40, labelOverlap=False, labelLimit=140)),
            y=alt.Y("value:Q", title=metric, scale=alt.Scale(domain=[0, 100])),
            color=alt.Color("run:N", scale=RUN_SCALE, sort=None,
                            legend=alt.Legend(orient="top", title="run", columns=4, labelLimit=200)),
            tooltip=[alt.Tooltip("run:N"), alt.Tooltip("value:Q", format=".2f")])
        layers = [bars]
        if metric in thresholds and thresholds[metric] is not None:
            line = pd.DataFrame({"threshold": [thresholds[metric]],
                                 "label": [f"gate {thresholds[metric]:.2f}"]})
            rule = alt.Chart(line).mark_rule(color="#c62828", strokeDash=[6, 3], strokeWidth=2)
            layers += [rule.encode(y="threshold:Q", tooltip=["label:N"]),
                       alt.Chart(line).mark_text(align="left", dx=4, dy=-6, color="#c62828")
                       .encode(y="threshold:Q", text="label:N", x=alt.value(0))]
        charts.append(alt.layer(*layers).properties(title=f"SQuAD {metric}", width=260, height=280))
    return alt.hconcat(*charts)


def training_curve(frame: pd.DataFrame, x: str, y: str, x_title: str, y_title: str,
                   smooth: str | None = None, epochs: pd.DataFrame | None = None,
                   log_y: bool = False) -> alt.LayerChart:
    """Lines per run of y against x; raw faint when a smoothed column is given; epoch starts as rules.

    frame: run, x, y[, smooth]; epochs: run, x, epoch (first x of each epoch).
    """
    scale = alt.Scale(type="log") if log_y else alt.Scale(zero=False)
    color = alt.Color("run:N", scale=RUN_SCALE, legend=alt.Legend(orient="top"))
    base = alt.Chart(frame).encode(x=alt.X(f"{x}:Q", title=x_title), color=color)
    raw = base.mark_line(opacity=0.3 if smooth else 1.0, strokeWidth=1).encode(
        y=alt.Y(f"{y}:Q", title=y_title, scale=scale),
        tooltip=[alt.Tooltip("run:N"), alt.Tooltip(f"{x}:Q", format=",.4~g"),
                 alt.Tooltip(f"{y}:Q", format=".4~g")])
    layers = [raw]
    if smooth:
        layers.append(base.mark_line(strokeWidth=2.2).encode(y=alt.Y(f"{smooth}:Q", scale=scale)))
    if epochs is not None and not epochs.empty:
        layers.append(alt.Chart(epochs).mark_rule(strokeDash=[3, 3], opacity=0.5).encode(
            x=f"{x}:Q", color=color, tooltip=[alt.Tooltip("run:N"), alt.Tooltip("epoch:Q")]))
    return alt.layer(*layers).properties(height=280).interactive(bind_y=False)


def label_groups(points: pd.DataFrame, near: float = 0.04) -> pd.DataFrame:
    """One label per cluster of points that would print on top of each other (the same
    ratio within 1%, accuracy within `near`): ratio, accuracy of the cluster's top point and
    the names one per line. points: name, ratio, accuracy."""
    rows, group = [], []
    for _, p in points.sort_values(["ratio", "accuracy"], ascending=[True, False]).iterrows():
        if group and abs(p["ratio"] / group[0]["ratio"] - 1) < 0.01 and \
                group[0]["accuracy"] - p["accuracy"] <= near:
            group.append(p)
            continue
        if group:
            rows.append(group)
        group = [p]
    if group:
        rows.append(group)
    return pd.DataFrame([{"ratio": g[0]["ratio"], "accuracy": g[0]["accuracy"],
                          "label": "\n".join(str(p["name"]) for p in g)} for g in rows],
                        columns=["ratio", "accuracy", "label"])


def pareto(points: pd.DataFrame) -> alt.LayerChart:
    """Accuracy vs trainable ratio (log x) for our runs and the leaderboard, Pareto front joined.

    points: name, source ('ours'|'leaderboard'), ratio (>0), accuracy (0..1), score, front (bool).
    """
    points = points[points["ratio"] > 0]
    x = alt.X("ratio:Q", title="trainable ratio (log)", scale=alt.Scale(type="log"))
    y = alt.Y("accuracy:Q", title="math accuracy", axis=PCT)
    dots = alt.Chart(points).mark_point(filled=True, size=90).encode(
        x=x, y=y,
        color=alt.Color("source:N", scale=alt.Scale(domain=["ours", "leaderboard"],
                                                     range=["#d62728", "#1f77b4"])),
        shape=alt.Shape("source:N"),
        tooltip=[alt.Tooltip("name:N"), alt.Tooltip("source:N"),
                 alt.Tooltip("accuracy:Q", format=".2%"), alt.Tooltip("ratio:Q", format=".3e"),
                 alt.Tooltip("score:Q", format=".4f")])
    front = alt.Chart(points[points["front"]]).mark_line(
        interpolate="step-after", color="gray", strokeDash=[4, 2]).encode(x=x, y=y, order="ratio:Q")
    labels = alt.Chart(label_groups(points[points["source"] == "ours"])).mark_text(
        align="left", baseline="bottom", dx=7, dy=-4, fontSize=11, lineBreak="\n").encode(
        x=x, y=y, text="label:N")
    return alt.layer(front, dots, labels).properties(
        title="Accuracy vs trainable ratio (dashed: Pareto front)", height=380)


# ---------------------------------------------------------------- runs by colour, digits, many runs

def run_colors(all_runs: list[str]) -> alt.Scale:
    """A colour per run that stays with the run: the domain is every run there is (sorted), not
    the ones on screen, so a run keeps its colour whichever role or selection it is in."""
    palette = ["#4c78a8", "#f58518", "#e45756", "#72b7b2", "#54a24b", "#eeca3b", "#b279a2",
               "#ff9da6", "#9d755d", "#bab0ac"]
    names = sorted(set(all_runs))
    return alt.Scale(domain=names, range=[palette[i % len(palette)] for i in range(len(names))])


def position_heatmap(frame: pd.DataFrame, positions: list[str], types: list[str],
                     runs: list[str]) -> alt.FacetChart:
    """Accuracy per (type, position) as coloured cells, one panel per run, side by side.

    frame: run, type, position, accuracy (0..1), correct, n; positions: column order (sign,
    then the largest place down); types: row order; runs: panel order.
    """
    base = alt.Chart(frame).encode(
        x=alt.X("position:N", title=None, sort=positions,
                axis=alt.Axis(labelAngle=-45, labelOverlap=False)),
        y=alt.Y("type:N", title=None, sort=types))
    cells = base.mark_rect().encode(
        color=alt.Color("accuracy:Q", title="right at this position",
                        scale=alt.Scale(domain=[0, 1], scheme="blues"), legend=alt.Legend(format="%")),
        tooltip=[alt.Tooltip("run:N"), alt.Tooltip("type:N"), alt.Tooltip("position:N"),
                 alt.Tooltip("accuracy:Q", format=".1%"), alt.Tooltip("correct:Q"),
                 alt.Tooltip("n:Q")])
    labels = base.mark_text(fontSize=10).encode(
        text=alt.Text("accuracy:Q", format=".0%"),
        color=alt.condition("datum.accuracy > 0.6", alt.value("white"), alt.value("black")))
    return alt.layer(cells, labels, data=frame).properties(
        width=max(160, 30 * len(positions)), height=max(80, 22 * len(types))).facet(
        column=alt.Column("run:N", title=None, sort=runs)).properties(
        title="Right digit by position (answer and reference aligned at the decimal point)")


def accuracy_by_type_runs(frame: pd.DataFrame, order: list[str], colors: alt.Scale,
                          run_order: list[str] | None = None) -> alt.LayerChart:
    """Per-type accuracy of N runs side by side (Wilson 95% whiskers), one colour per run.

    frame: run, type, accuracy, low, high, n; order: type order; colors: ``run_colors``;
    run_order: bar order within a type (default: by name).
    """
    return _grouped_bars(frame, "type", "problem type", order, colors=colors,
                         run_order=run_order, title="Accuracy by type (bars: Wilson 95% interval)")


def accuracy_ratio_minutes(frame: pd.DataFrame, colors: alt.Scale) -> alt.LayerChart:
    """Accuracy against trainable ratio (log x), point size = training minutes, run colours.

    frame: run, accuracy (0..1), ratio (> 0 kept), minutes (NaN: smallest point).
    """
    frame = frame[frame["ratio"] > 0].assign(minutes=frame["minutes"].fillna(0))
    x = alt.X("ratio:Q", title="trainable ratio (log)", scale=alt.Scale(type="log", padding=40))
    y = alt.Y("accuracy:Q", title="math accuracy", axis=PCT, scale=alt.Scale(domainMin=0))
    dots = alt.Chart(frame).mark_circle(opacity=0.85).encode(
        x=x, y=y, color=alt.Color("run:N", scale=colors, legend=alt.Legend(orient="top")),
        size=alt.Size("minutes:Q", title="training minutes", scale=alt.Scale(range=[60, 900])),
        tooltip=[alt.Tooltip("run:N"), alt.Tooltip("accuracy:Q", format=".2%"),
                 alt.Tooltip("ratio:Q", format=".3e"), alt.Tooltip("minutes:Q", format=".1f")])
    labels = alt.Chart(frame).mark_text(align="left", dx=9, dy=-9, fontSize=11).encode(
        x=x, y=y, text="run:N")
    return alt.layer(dots, labels).properties(
        title="Accuracy vs trainable ratio (size: training minutes)", height=340)


def accuracy_by_step(frame: pd.DataFrame, best_step: int | None, title: str = "",
                     chosen_step: int | None = None) -> alt.LayerChart:
    """Accuracy against training step: a thick line for "all", thin ones per type, a
    dashed rule at the best checkpoint and a solid green one at the checkpoint chosen for
    submission (pipeline.checkpoint_choice), when given. frame: derive.checkpoint_long output."""
    base = alt.Chart(frame).encode(
        x=alt.X("step:Q", title="training step"),
        y=alt.Y("accuracy:Q", title="accuracy", axis=PCT, scale=alt.Scale(domain=[0, 1])),
        color=alt.Color("series:N", title="type", scale=alt.Scale(scheme="tableau20")),
        tooltip=[alt.Tooltip("series:N", title="type"), alt.Tooltip("step:Q"),
                 alt.Tooltip("accuracy:Q", format=".1%")])
    lines = base.mark_line(point=True).encode(
        strokeWidth=alt.condition(alt.datum.series == "all", alt.value(4), alt.value(1.5)))
    layers = [lines]
    steps = frame["step"] if not frame.empty else pd.Series([0])
    middle = (steps.min() + steps.max()) / 2

    def marker(step, label, color, dash, dy):
        # the label on the side with room: left of a rule in the right half of the chart
        right_half = step > middle
        one = pd.DataFrame({"step": [step], "label": [label]})
        return [alt.Chart(one).mark_rule(strokeDash=dash, color=color,
                                         strokeWidth=2).encode(x="step:Q"),
                alt.Chart(one).mark_text(align="right" if right_half else "left",
                                         dx=-4 if right_half else 4, dy=dy, baseline="top",
                                         color=color).encode(x="step:Q", y=alt.value(0),
                                                             text="label:N")]

    if best_step is not None and best_step == chosen_step:
        layers += marker(best_step, f"best and chosen: step {best_step}", "#2e7d32", [1, 0], -6)
    else:
        if best_step is not None:
            layers += marker(best_step, f"best: step {best_step}", "black", [6, 4], -6)
        if chosen_step is not None:
            layers += marker(chosen_step, f"chosen: step {chosen_step}", "#2e7d32", [1, 0], 10)
    return alt.layer(*layers).properties(title=title, height=320)


def heldout_squad_by_step(frame: pd.DataFrame, base_f1: float, keep_f1: float,
                          gate_f1: float, chosen_step: int | None,
                          title: str = "") -> alt.LayerChart:
    """Held-out SQuAD F1 (MindFormers) of each candidate checkpoint (one column per step,
    green where it keeps what the choice asks, red where not, its F1 and kept share written
    beside it) against three horizontal rules: the base model's F1 on the same items (gray),
    what the choice asks (green dashes) and the contest's 90% (red dashes); the chosen
    checkpoint ringed. The y axis is zoomed to the values: the differences that decide are
    a point or two of F1. frame: derive.heldout_squad_long output (step, f1, kept, passes)."""
    values = [base_f1, keep_f1, gate_f1, *frame["f1"].tolist()]
    span = max(max(values) - min(values), 1.0)
    y = alt.Y("f1:Q", title="held-out SQuAD F1 (MindFormers)",
              scale=alt.Scale(domain=[max(0.0, min(values) - span), max(values) + span], nice=False))
    x = alt.X("step:O", title="candidate checkpoint (training step)", axis=alt.Axis(labelAngle=0))
    frame = frame.assign(note=[f"F1 {f:.2f} ({k:.0%} kept)" for f, k in zip(frame["f1"], frame["kept"])])
    color = alt.Color("passes:N", title="keeps enough",
                      scale=alt.Scale(domain=["yes", "no"], range=["#2e7d32", "#c62828"]))
    dots = alt.Chart(frame).mark_circle(size=140, opacity=1).encode(
        x=x, y=y, color=color,
        tooltip=[alt.Tooltip("step:O"), alt.Tooltip("f1:Q", format=".2f"),
                 alt.Tooltip("kept:Q", format=".0%", title="kept of base"), alt.Tooltip("passes:N")])
    notes = alt.Chart(frame).mark_text(align="left", dx=12, fontSize=12).encode(
        x=x, y=y, text="note:N", color=color)
    layers = [dots, notes]
    lines = [(base_f1, f"base {base_f1:.2f}", "gray", [1, 0], -5),
             (keep_f1, f"the choice asks {keep_f1:.2f}", "#2e7d32", [6, 3], -5),
             (gate_f1, f"contest 90%: {gate_f1:.2f}", "#c62828", [6, 3], 12)]
    for value, label, line_color, dash, dy in lines:
        one = pd.DataFrame([{"f1": value, "label": label}])
        layers += [alt.Chart(one).mark_rule(color=line_color, strokeDash=dash).encode(y="f1:Q"),
                   alt.Chart(one).mark_text(align="left", dx=4, dy=dy, color=line_color).encode(
                       x=alt.value(0), y="f1:Q", text="label:N")]
    if chosen_step is not None and (frame["step"] == chosen_step).any():
        layers.append(alt.Chart(frame[frame["step"] == chosen_step]).mark_point(
            size=480, color="#2e7d32", filled=False, strokeWidth=3).encode(x=x, y=y))
    return alt.layer(*layers).properties(title=title, height=280)
