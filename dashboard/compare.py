"""Pure frames for the Compare page and the Math page's position heatmap (no Streamlit, no files).

Inputs are what data.py already loaded (manifests, metrics.json, loss frames), so the
pages stay render-only and these are tested directly.
"""
from __future__ import annotations

import pandas as pd

from dashboard.derive import with_wilson
from pipeline.compare import run_results, run_settings
from pipeline.problems import TYPES
from pipeline.scoring.digits import position_order


def training_from_loss(frame: pd.DataFrame | None) -> dict:
    """{"steps", "peak_lr", "minutes"} from a data.training() loss frame (all None without one)."""
    if frame is None or frame.empty:
        return {"steps": None, "peak_lr": None, "minutes": None}
    lr = frame["lr"].dropna() if "lr" in frame else pd.Series(dtype=float)
    return {"steps": int(frame["global_step"].max()),
            "peak_lr": float(lr.max()) if not lr.empty else None,
            "minutes": float(frame["wall_min"].iloc[-1]) if "wall_min" in frame else None}


def compare_rows(runs: dict[str, dict], rule: str) -> pd.DataFrame:
    """One row per run: settings, then results under `rule` (accuracy in %, per type as
    ``acc_<type>`` in %). runs: {run: {"manifest", "metrics", "training"}} where training is
    ``training_from_loss``'s dict."""
    rows = []
    for name, item in runs.items():
        manifest = item.get("manifest") or {}
        settings = run_settings(manifest, item.get("training"))
        res = run_results(item.get("metrics"), rule, manifest.get("kind"))
        row = {"run": name, **settings,
               "math_acc": None if res["accuracy"] is None else 100 * res["accuracy"],
               "squad_f1": res["squad_f1"], "squad_em": res["squad_em"], "gate": res["gate"],
               "trainable_ratio": res["ratio"], "score": res["score"],
               "leaderboard_rank": res["leaderboard_rank"]}
        for ptype, entry in res["by_type"].items():
            row[f"acc_{ptype}"] = 100 * entry["accuracy"]
        rows.append(row)
    frame = pd.DataFrame(rows)
    type_cols = [f"acc_{t}" for t in TYPES if f"acc_{t}" in frame]
    rest = [c for c in frame.columns if c.startswith("acc_") and c not in type_cols]
    return frame[[c for c in frame.columns if not c.startswith("acc_")] + type_cols + rest]


def per_type_long(metrics_by_run: dict[str, dict | None], rule: str) -> pd.DataFrame:
    """run, type, accuracy, correct, n, low, high (Wilson 95%) from metrics.json, "all" last."""
    rows = []
    for name, met in metrics_by_run.items():
        entry = (((met or {}).get("math") or {}).get("rules") or {}).get(rule)
        if not entry:
            continue
        for ptype, cell in [*entry["by_type"].items(), ("all", entry)]:
            rows.append({"run": name, "type": ptype, "accuracy": cell["accuracy"],
                         "correct": cell["correct"], "n": cell["total"]})
    return with_wilson(rows)


def scatter_points(rows: pd.DataFrame) -> pd.DataFrame:
    """run, accuracy (0..1), ratio, minutes for the accuracy/ratio/minutes chart."""
    if rows.empty:
        return pd.DataFrame(columns=["run", "accuracy", "ratio", "minutes"])
    keep = rows[rows["math_acc"].notna() & rows["trainable_ratio"].notna()]
    return pd.DataFrame({"run": keep["run"], "accuracy": keep["math_acc"] / 100.0,
                         "ratio": keep["trainable_ratio"].astype(float),
                         "minutes": pd.to_numeric(keep["minutes"], errors="coerce")})


def positions_long(metrics_by_run: dict[str, dict | None]) -> tuple[pd.DataFrame, list[str], list[str]]:
    """(frame, positions, types) for charts.position_heatmap from metrics.json math.positions.

    frame: run, type, position, accuracy, correct, n; positions in reading order (sign, then
    the largest place down); types in the contest's order. Empty frame when no run has them.
    """
    rows = []
    for name, met in metrics_by_run.items():
        for ptype, positions in (((met or {}).get("math") or {}).get("positions") or {}).items():
            for position, cell in positions.items():
                rows.append({"run": name, "type": ptype, "position": position,
                             "accuracy": cell["accuracy"], "correct": cell["correct"],
                             "n": cell["total"]})
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame, [], []
    seen = set(frame["type"])
    types = [t for t in TYPES if t in seen] + sorted(seen - set(TYPES))
    return frame, position_order(frame["position"]), types
