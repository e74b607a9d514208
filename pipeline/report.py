"""A Markdown report on N runs to paste into a PR or a chat, with its charts as PNG beside it.

    python -m pipeline report --runs smollm2-base smollm2-lora --out report.md

``build_report`` returns the Markdown and the charts (Altair, from ``dashboard.charts``);
``write_report`` saves ``report.md`` and ``report_files/*.png`` (Altair's own PNG export,
through vl-convert-python). The first run is the reference of the paired tests.
"""
from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pandas as pd

from pipeline import compare, runs
from pipeline.errors import PipelineError


def _pct(value, digits: int = 1) -> str:
    return "—" if value is None else f"{100 * value:.{digits}f}%"


def _num(value, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _p(value) -> str:
    if value is None:
        return "—"
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def _samples(run_ids: list[str], results: Path | None) -> dict[str, list[dict]]:
    out = {}
    for run_id in run_ids:
        run = runs.resolve_run(run_id, results)
        path = runs.task_file(run, "samples", "math")
        out[run.name] = runs.read_jsonl(path) if path.is_file() else []
    return out


def build_report(run_ids: list[str], results: Path | None = None, rule: str = "exact",
                 files_dir: str = "report_files") -> tuple[str, dict]:
    """(Markdown text, {png file name: Altair chart}) for runs compared under `rule`.

    files_dir: the folder the Markdown links the PNGs in (relative to the report).
    Raises PipelineError for fewer than one run, a repeated run or an unknown one.
    """
    if not run_ids:
        raise PipelineError("report needs at least one run (--runs A [B ...])")
    if len(set(run_ids)) != len(run_ids):
        raise PipelineError(f"a run is named twice in {run_ids}")
    table = compare.compare_table(run_ids, results, rule)
    names = [row["run"] for row in table]
    samples = _samples(names, results)
    per_type = compare.per_type_against_first(samples, rule) if all(samples.values()) else []
    first = names[0]

    md = [f"# Runs compared: {', '.join(names)}", "",
          f"Math accuracy under the `{rule}` rule; scores and ranks are the contest's (phase 1) "
          f"for that accuracy. Paired tests are against `{first}`.", "", "## Headline", ""]
    md.append(_table(
        ["run", "kind", "rank/alpha", "targets", "lr", "steps", "train min", "trainable ratio",
         "math", "SQuAD F1 / EM", "gate", "score", "leaderboard rank"],
        [[f"`{r['run']}`", r["kind"] or "—",
          "—" if r["lora_rank"] is None else f"r{r['lora_rank']} / {_num(r['lora_alpha'], 'g')}",
          r["targets"] or "—", _num(r["lr"], ".3g"), _num(r["steps"], "d"),
          _num(r["minutes"], ".1f"), _num(r["ratio"], ".4g"),
          f"{_pct(r['accuracy'])} ({r['correct']}/{r['total']})" if r["total"] else "—",
          "—" if r["squad_f1"] is None else f"{r['squad_f1']:.2f} / {r['squad_em']:.2f}",
          r["gate"] or "—", _num(r["score"], ".4f"), _num(r["leaderboard_rank"], "d")]
         for r in table]))

    if per_type:
        md += ["", "## Math by type", "",
               "Accuracy (right/rows) with its Wilson 95% interval; p: exact McNemar test on "
               f"the problems both runs answered (paired by problem text and reference) "
               f"against `{first}`.", ""]
        body = []
        for entry in per_type:
            cells = [entry["type"]]
            for name in names:
                c = entry["runs"][name]
                if not c["n"]:
                    cells.append("—")
                    continue
                text = (f"{_pct(c['accuracy'])} ({c['correct']}/{c['n']}) "
                        f"[{_pct(c['low'], 0)}–{_pct(c['high'], 0)}]")
                if name != first and c["paired"]:
                    text += f", p {_p(c['p'])}"
                cells.append(text)
            body.append(cells)
        md.append(_table(["type"] + [f"`{n}`" for n in names], body))
        unpaired = [n for n in names[1:] if not per_type[-1]["runs"][n]["paired"]]
        if unpaired:
            md += ["", f"No paired test for {', '.join(f'`{n}`' for n in unpaired)}: "
                       f"it answered none of the problems `{first}` answered."]

        md += ["", "## What the wrong answers are", "",
               "Error classes (docs/error_classes.md) of the answers wrong under "
               f"`{rule}`.", ""]
        counts = {name: compare.class_counts(samples[name], rule) for name in names}
        classes = [c for c in next(iter(counts.values())) if any(counts[n][c] for n in names)]
        md.append(_table(["class"] + [f"`{n}`" for n in names],
                         [[c] + [str(counts[n][c]) for n in names] for c in classes]))

    charts = _charts(table, per_type, names)
    if charts:
        md += ["", "## Charts", ""]
        md += [f"![{title}]({files_dir}/{name})" for name, (title, _) in charts.items()]
    md += ["", f"_Written by `python -m pipeline report --runs {' '.join(names)} --rule {rule}`._", ""]
    return "\n".join(md), {name: chart for name, (_, chart) in charts.items()}


def _charts(table: list[dict], per_type: list[dict], names: list[str]) -> dict:
    from dashboard import charts
    colors = charts.run_colors(names)
    out = {}
    if per_type:
        frame = pd.DataFrame([{"run": n, "type": e["type"], "accuracy": e["runs"][n]["accuracy"],
                               "low": e["runs"][n]["low"], "high": e["runs"][n]["high"],
                               "n": e["runs"][n]["n"]}
                              for e in per_type for n in names])
        out["accuracy_by_type.png"] = ("Accuracy by type", charts.accuracy_by_type_runs(
            frame, [e["type"] for e in per_type], colors, names).properties(width=720))
    points = pd.DataFrame([{"run": r["run"], "accuracy": r["accuracy"], "ratio": r["ratio"],
                            "minutes": r["minutes"]} for r in table
                           if r["accuracy"] is not None and r["ratio"]])
    if not points.empty:
        out["accuracy_vs_ratio.png"] = ("Accuracy vs trainable ratio", charts.accuracy_ratio_minutes(
            points.astype({"minutes": float}), colors).properties(width=520))
    return out


def write_report(run_ids: list[str], out: Path, results: Path | None = None,
                 rule: str = "exact") -> list[Path]:
    """Write the report to `out` and its PNGs to ``<out stem>_files/``; returns the paths.

    Raises PipelineError as build_report does, or when PNG export is not installed.
    """
    out = Path(out)
    files_dir = f"{out.stem}_files"
    text, charts = build_report(run_ids, results, rule, files_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    written = []
    if charts:
        folder = out.parent / files_dir
        folder.mkdir(exist_ok=True)
        for name, chart in charts.items():
            path = folder / name
            path.write_bytes(chart_png(chart))
            written.append(path)
    out.write_text(text, encoding="utf-8")
    return [out, *written]


def chart_png(chart) -> bytes:
    """PNG bytes of an Altair chart (vl-convert); PipelineError naming the package if missing."""
    try:
        import vl_convert  # noqa: F401  (Altair's PNG export)
    except ImportError as exc:
        raise PipelineError("PNG export needs vl-convert-python (pip install "
                            "vl-convert-python, see requirements.txt)") from exc
    buffer = io.BytesIO()
    chart.save(buffer, format="png", scale_factor=2)
    return buffer.getvalue()


def report_zip(run_ids: list[str], results: Path | None = None, rule: str = "exact") -> bytes:
    """report.md and report_files/*.png in one zip (the dashboard's download)."""
    text, charts = build_report(run_ids, results, rule, "report_files")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("report.md", text)
        for name, chart in charts.items():
            zf.writestr(f"report_files/{name}", chart_png(chart))
    return buffer.getvalue()
