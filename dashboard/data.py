"""Every file the dashboard reads, behind @st.cache_data keyed on (path, mtime).

Public functions take run ids, stat the files they need and call a cached
reader with (path, mtime_ns): a rerun that rewrites metrics.json or
samples_math.jsonl changes the key, so the page shows it without a restart.
Derived tables (paired statistics, buckets, joins) are cached on the same keys,
so a warm page never touches the 100k-row frames it summarises.
Job status (job.json, progress, log tail) is read uncached: it is live.

A run folder the dashboard cannot read (a corrupt manifest.json or metrics.json) is
left out of run_ids() and reported by skipped_runs() with the reason, so one bad
folder never takes the other runs down. Folder names are used as they are (a copy
named `smollm2-base copy` or `运行一` is a run like any other).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from pipeline import contest, jobs, runs
from pipeline.errors import PipelineError
from pipeline.problems import TYPES
from pipeline.scoring.math import HEADLINE_RULE, RULES as _PIPELINE_RULES
from pipeline.scoring.stats import pair_keys, paired_table, wilson_interval

RULES = tuple(_PIPELINE_RULES)  # the pipeline's rule names, in its order
ANSWER_BUCKETS = ([0, 2, 4, 8, 16, np.inf], ["1-2", "3-4", "5-8", "9-16", "17+"])
OPERAND_BUCKETS = ([-1, 1, 2, 3, 4, np.inf], ["1", "2", "3", "4", "5+"])


def results_dir() -> Path:
    """The results folder: $PIPELINE_RESULTS (read now, so tests can point it), else results/."""
    return Path(os.environ.get("PIPELINE_RESULTS") or runs.RESULTS_DIR)


def run_path(run_id: str) -> Path:
    """results/<run_id>; any folder name listed there, but never a path out of it."""
    if not run_id or run_id in (".", "..") or "/" in run_id or "\\" in run_id or "\0" in run_id:
        raise PipelineError(f"not a run folder name: {run_id!r}", results_dir())
    return results_dir() / run_id


def _key(path: Path) -> tuple[str, int]:
    """(path, mtime_ns); mtime 0 for a missing file, so its later arrival changes the key."""
    try:
        return str(path), path.stat().st_mtime_ns
    except FileNotFoundError:
        return str(path), 0


def _folders() -> list[str]:
    """Every folder under results/ with a manifest.json, sorted by name."""
    return [p.name for p in runs.list_runs(results_dir())]


def _check_metrics(met) -> None:
    """Raise PipelineError when metrics.json lacks the shape every page reads."""
    if not isinstance(met, dict):
        raise ValueError("is not a JSON object")
    math = met.get("math")
    if math is not None:
        rules = math.get("rules") if isinstance(math, dict) else None
        if not isinstance(rules, dict) or not all(
                isinstance(v, dict) and {"accuracy", "correct", "total"} <= set(v) for v in rules.values()):
            raise ValueError("math.rules must map each rule to {accuracy, correct, total}")
    squad = met.get("squad")
    if squad is not None and not (isinstance(squad, dict) and isinstance(squad.get("mindformers"), dict)
                                  and {"f1", "em"} <= set(squad["mindformers"])):
        raise ValueError("squad must hold mindformers {f1, em}")


def _problem(run_id: str) -> str | None:
    """Why the dashboard cannot read a run folder, or None when it can."""
    folder = results_dir() / run_id
    try:
        if not isinstance(_json(*_key(folder / "manifest.json")), dict):
            return "manifest.json: is not a JSON object"
        met = _json(*_key(folder / "metrics.json"))
    except PipelineError as exc:
        return str(exc).replace(f"{folder}{os.sep}", "")  # the folder is named beside it
    if met is not None:
        try:
            _check_metrics(met)
        except ValueError as exc:
            return f"metrics.json {exc}"
    return None


def run_ids() -> list[str]:
    """Run folders the dashboard can read (a manifest.json, a sound metrics.json if any), by name."""
    return [r for r in _folders() if _problem(r) is None]


def skipped_runs() -> list[tuple[str, str]]:
    """(folder, reason) for each run folder left out of run_ids()."""
    return [(r, why) for r in _folders() if (why := _problem(r)) is not None]


# --- raw readers (cached) ---

@st.cache_data(show_spinner=False, max_entries=256)
def _json(path: str, mtime: int) -> dict | None:
    return runs.read_json(Path(path)) if mtime else None


@st.cache_data(show_spinner=False, max_entries=16)
def _math_frame(path: str, mtime: int) -> pd.DataFrame | None:
    if not mtime:
        return None
    frame = pd.DataFrame(runs.read_jsonl(Path(path)))
    if frame.empty:
        return None
    if "verdicts" not in frame or not frame["verdicts"].map(lambda v: isinstance(v, dict)).all():
        raise PipelineError("every row needs a 'verdicts' object: not a scored samples file "
                            "(run Re-score)", path)
    verdicts = pd.DataFrame(frame.pop("verdicts").tolist(), index=frame.index)
    for rule in verdicts.columns:
        frame[f"ok_{rule}"] = verdicts[rule].fillna(False).astype(bool)
    for col in ("id", "type", "extracted", "error_class", "output", "problem", "reference"):
        if col not in frame:
            frame[col] = None
    frame["type"] = frame["type"].fillna("unknown").astype(str)
    frame["pair_key"] = pair_keys(frame["problem"], frame["reference"])
    reference = frame["reference"].fillna("").astype(str)
    frame["answer_digits"] = reference.str.count(r"\d")
    # Largest operand in the problem, by digits of its integer part.
    ints = frame["problem"].fillna("").astype(str).str.findall(r"(\d+)(?:\.\d+)?")
    frame["operand_digits"] = [max((len(x) for x in xs), default=0) for xs in ints]
    # bins and labels by name: positionally the labels would land in pd.cut's `right`
    frame["answer_len"] = pd.cut(frame["answer_digits"], bins=ANSWER_BUCKETS[0],
                                 labels=ANSWER_BUCKETS[1]).astype(str)
    frame["operand_size"] = pd.cut(frame["operand_digits"], bins=OPERAND_BUCKETS[0],
                                   labels=OPERAND_BUCKETS[1]).astype(str)
    return frame


@st.cache_data(show_spinner=False, max_entries=16)
def _squad_frame(path: str, mtime: int) -> pd.DataFrame | None:
    if not mtime:
        return None
    frame = pd.DataFrame(runs.read_jsonl(Path(path)))
    if frame.empty:
        return None
    missing = [c for c in ("id", "question", "gold", "prediction", "mf_f1", "mf_em") if c not in frame]
    if missing:
        raise PipelineError(f"rows lack {', '.join(missing)}: not a scored SQuAD samples file "
                            "(run Re-score)", path)
    return frame


@st.cache_data(show_spinner=False, max_entries=32)
def _train_frame(path: str, mtime: int) -> tuple[pd.DataFrame | None, list[str]]:
    if not mtime:
        return None, []
    try:
        from pipeline.logs import parse_log  # owned by the log-parser helper; imported lazily
    except ImportError:
        return None, ["pipeline.logs is not available: cannot parse train.log"]
    parsed = parse_log(Path(path))
    frame = pd.DataFrame(parsed.get("loss") or [])
    if frame.empty:
        return None, parsed.get("warnings", [])
    # A resumed run logs some steps twice: keep the latest (the one the model continued from).
    frame = frame.drop_duplicates("global_step", keep="last").sort_values("global_step")
    if "time" in frame and frame["time"].notna().all():
        stamps = pd.to_datetime(frame["time"])
        frame["wall_s"] = (stamps - stamps.iloc[0]).dt.total_seconds()
    else:
        frame["wall_s"] = frame["per_step_time_ms"].fillna(0).cumsum() / 1000.0
    frame["wall_min"] = frame["wall_s"] / 60.0
    keep = ["global_step", "epoch", "step", "loss", "lr", "per_step_time_ms", "wall_s", "wall_min"]
    return frame[[c for c in keep if c in frame]].reset_index(drop=True), parsed.get("warnings", [])


# --- per run ---

def manifest(run_id: str) -> dict:
    return _json(*_key(run_path(run_id) / "manifest.json")) or {}


def metrics(run_id: str) -> dict | None:
    return _json(*_key(run_path(run_id) / "metrics.json"))


def math_samples(run_id: str) -> pd.DataFrame | None:
    return _math_frame(*_key(run_path(run_id) / "samples_math.jsonl"))


def squad_samples(run_id: str) -> pd.DataFrame | None:
    return _squad_frame(*_key(run_path(run_id) / "samples_squad.jsonl"))


def training(run_id: str) -> tuple[pd.DataFrame | None, list[str]]:
    """Loss points (one per global step) and the parser's warnings; (None, []) without a log."""
    return _train_frame(*_key(run_path(run_id) / "train.log"))


def created(run_id: str) -> str:
    """When the run was made (manifest 'created'), '' if unknown: orders runs newest first."""
    value = manifest(run_id).get("created")
    return value if isinstance(value, str) else ""


def recorded_baseline(run_id: str) -> str | None:
    """The baseline a run was compared with: its manifest's baseline_run (set by train or
    evaluate --baseline), else its metrics' comparison."""
    name = manifest(run_id).get("baseline_run") or \
        ((metrics(run_id) or {}).get("comparison") or {}).get("baseline")
    return name if isinstance(name, str) else None


def has_train_log(run_id: str) -> bool:
    return (run_path(run_id) / "train.log").exists()


def checkpoint_curve(run_id: str) -> list[dict]:
    """The points of checkpoints_math.json (eval-checkpoints), [] without one."""
    from pipeline.checkpoint_curve import CURVE_FILE
    points = _json(*_key(run_path(run_id) / CURVE_FILE))
    return points if isinstance(points, list) else []


def checkpoint_choice(run_id: str) -> dict | None:
    """checkpoint_choice.json (eval-checkpoints --choose) while the run's adapter still
    follows it (a resumed training points it back at its last step); None otherwise."""
    from pipeline.checkpoint_choice import CHOICE_FILE, follows
    run = run_path(run_id)
    choice = _json(*_key(run / CHOICE_FILE))
    if choice is None:
        return None
    try:
        if not follows(manifest(run_id), {"step": choice["step"]}):
            return None
        for c in choice["candidates"]:
            float(c["f1"]), float(c["kept_f1"]), int(c["step"]), bool(c["passes"])
        float(choice["base_squad"]["mindformers"]["f1"]), float(choice["keep"])
    except (KeyError, TypeError, ValueError) as exc:
        raise PipelineError(f"not an eval-checkpoints --choose file ({type(exc).__name__}: {exc})",
                            run / CHOICE_FILE) from None
    return choice


# --- derived tables (cached on the files' keys) ---

def _math_key(run_id: str) -> tuple[str, int]:
    return _key(run_path(run_id) / "samples_math.jsonl")


@st.cache_data(show_spinner=False, max_entries=64)
def _paired(base_key, cand_key, rule: str) -> pd.DataFrame | None:
    base, cand = _math_frame(*base_key), _math_frame(*cand_key)
    col = f"ok_{rule}"
    if base is None or cand is None or col not in base or col not in cand:
        return None
    joined = cand[["pair_key", "type", col]].merge(base[["pair_key", col]], on="pair_key",
                                                   suffixes=("_c", "_b"))
    if joined.empty:
        return None
    joined = joined.rename(columns={f"{col}_b": "base", f"{col}_c": "cand"})
    table = paired_table(joined, group="type")
    rank = {t: i for i, t in enumerate((*TYPES, "all"))}  # the contest's type order, "all" last
    return table.sort_values("type", key=lambda s: s.map(lambda t: rank.get(t, len(rank) - 1.5)),
                             kind="stable").reset_index(drop=True)


def paired_by_type(baseline: str, candidate: str, rule: str) -> pd.DataFrame | None:
    """Per-type paired comparison (stats.paired_table) over the problems both runs answered
    (paired by problem text + reference, never by position); None when they share none."""
    return _paired(_math_key(baseline), _math_key(candidate), rule)


@st.cache_data(show_spinner=False, max_entries=64)
def _shared(base_key, cand_key) -> dict | None:
    base, cand = _math_frame(*base_key), _math_frame(*cand_key)
    if base is None or cand is None:
        return None
    return {"shared": int(cand["pair_key"].isin(set(base["pair_key"])).sum()),
            "base_rows": len(base), "cand_rows": len(cand)}


def shared_rows(baseline: str, candidate: str) -> dict | None:
    """{shared, base_rows, cand_rows}: how many math problems the two runs have in common;
    None when either has no scored samples."""
    return _shared(_math_key(baseline), _math_key(candidate))


@st.cache_data(show_spinner=False, max_entries=64)
def _bucket(key, rule: str, by: str) -> pd.DataFrame | None:
    frame = _math_frame(*key)
    if frame is None or f"ok_{rule}" not in frame:
        return None
    grouped = frame.groupby(by, sort=False)[f"ok_{rule}"].agg(["sum", "count"]).reset_index()
    grouped.columns = [by, "correct", "n"]
    grouped["accuracy"] = grouped["correct"] / grouped["n"]
    grouped["low"], grouped["high"] = wilson_interval(grouped["correct"].to_numpy(),
                                                      grouped["n"].to_numpy())
    return grouped


def accuracy_by(run_id: str, rule: str, by: str) -> pd.DataFrame | None:
    """Accuracy with Wilson bounds per value of `by` ('answer_len' or 'operand_size')."""
    return _bucket(_math_key(run_id), rule, by)


@st.cache_data(show_spinner=False, max_entries=16)
def _error_rows(base_key, cand_key) -> pd.DataFrame | None:
    cand = _math_frame(*cand_key)
    if cand is None:
        return None
    base = _math_frame(*base_key) if base_key else None
    if base is None:
        return cand
    ok_cols = [c for c in base.columns if c.startswith("ok_")]
    renamed = base[["pair_key", *ok_cols]].rename(columns={c: f"base_{c}" for c in ok_cols})
    return cand.merge(renamed, on="pair_key", how="left")


def error_rows(candidate: str, baseline: str | None) -> pd.DataFrame | None:
    """Candidate's samples with the baseline's verdicts as base_ok_<rule> columns."""
    return _error_rows(_math_key(baseline) if baseline else None, _math_key(candidate))


@st.cache_data(show_spinner=False, max_entries=32)
def _classes_under(key, rule: str) -> np.ndarray | None:
    from pipeline.scoring.errors import wrong_answer_class
    frame = _math_frame(*key)
    if frame is None or f"ok_{rule}" not in frame:
        return None
    # A class depends on the answer only, never on the rule, except for being None when the
    # rule says right; the stored one (headline rule) is reused where there is one.
    return np.array([
        None if ok else (stored if isinstance(stored, str) else wrong_answer_class(
            problem or "", reference or "", extracted if isinstance(extracted, str) else None,
            output or "", ptype))
        for ok, stored, problem, reference, extracted, output, ptype in zip(
            frame[f"ok_{rule}"], frame["error_class"], frame["problem"], frame["reference"],
            frame["extracted"], frame["output"], frame["type"])], dtype=object)


def error_classes(run_id: str, rule: str) -> np.ndarray | None:
    """The error class of each math sample (samples order) under `rule`: None exactly where
    that rule calls the sample right (the stored classes follow the headline rule only)."""
    return _classes_under(_math_key(run_id), rule)


@st.cache_data(show_spinner=False, max_entries=16)
def _squad_pair(base_key, cand_key) -> pd.DataFrame | None:
    cand = _squad_frame(*cand_key)
    base = _squad_frame(*base_key)
    if cand is None:
        return None
    cols = ["id", "question", "gold", "prediction", "mf_f1", "mf_em"]
    out = cand[cols].copy()
    if base is not None:
        out = out.merge(base[["id", "prediction", "mf_f1", "mf_em"]].rename(columns={
            "prediction": "base_prediction", "mf_f1": "base_f1", "mf_em": "base_em"}),
            on="id", how="left")
        out["f1_loss"] = out["base_f1"] - out["mf_f1"]
        out = out.sort_values("f1_loss", ascending=False, kind="stable")[
            ["id", "question", "gold", "prediction", "base_prediction", "f1_loss", "mf_f1",
             "base_f1", "mf_em", "base_em"]]
    return out.reset_index(drop=True)


def squad_pair(candidate: str, baseline: str) -> pd.DataFrame | None:
    """Candidate's SQuAD rows beside the baseline's, largest F1 loss first."""
    return _squad_pair(_key(run_path(baseline) / "samples_squad.jsonl"),
                       _key(run_path(candidate) / "samples_squad.jsonl"))


# --- across runs ---

def run_summaries() -> list[dict]:
    """One dict per run: {run_id, manifest, metrics} (both small, cached)."""
    return [{"run_id": r, "manifest": manifest(r), "metrics": metrics(r)} for r in run_ids()]


@st.cache_data(show_spinner=False)
def _leaderboard(path: str, mtime: int) -> pd.DataFrame:
    return pd.DataFrame([e.__dict__ for e in contest.load_leaderboard(Path(path))])


def leaderboard() -> pd.DataFrame:
    """The 20 published phase-1 teams (rank, team, accuracy 0..1, ratio, score, lora, ...)."""
    return _leaderboard(*_key(contest.LEADERBOARD_CSV))


def preset_configs() -> list[str]:
    """CPU training presets the train job can start from (configs/*.yaml, repo-relative)."""
    return sorted(str(p.relative_to(runs.REPO_ROOT)) for p in (runs.REPO_ROOT / "configs").glob("*.yaml")
                  if preset_info(str(p.relative_to(runs.REPO_ROOT))).get("device") == "cpu")


@st.cache_data(show_spinner=False, max_entries=32)
def _yaml(path: str, mtime: int) -> dict:
    import yaml
    try:
        loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8")) if mtime else None
    except (OSError, yaml.YAMLError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


def preset_info(preset: str) -> dict:
    """{device, lora: {rank, alpha, targets}, max_steps, data_train} of a preset YAML ({} if unreadable)."""
    config = _yaml(*_key(runs.REPO_ROOT / preset))
    if not config:
        return {}
    return {"device": config.get("device"), "lora": config.get("lora") or {},
            "max_steps": (config.get("train") or {}).get("max_steps"),
            "data_train": (config.get("data") or {}).get("train")}


def data_recipes() -> dict[str, str]:
    """Data recipe name -> configs/data/<name>.yaml (repo-relative)."""
    return {p.stem: str(p.relative_to(runs.REPO_ROOT))
            for p in sorted((runs.REPO_ROOT / "configs" / "data").glob("*.yaml"))}


def prepared_dir(recipe: str) -> Path:
    """Where the train form keeps a recipe's prepared data: $PIPELINE_DATA_DIR/<name> when set
    (tests), else the recipe's own output folder (data/prepared/<name>, as the CLI writes it)."""
    root = os.environ.get("PIPELINE_DATA_DIR")
    if root:
        return Path(root) / recipe
    output = (_yaml(*_key(runs.REPO_ROOT / data_recipes()[recipe])).get("output") or {})
    return runs.REPO_ROOT / (output.get("dir") or f"data/prepared/{recipe}")


def preset_recipe(preset: str) -> str | None:
    """The recipe a preset's data.train was prepared by (data/prepared/<name>/...), else the
    recipe named like its model kind ('tiny'), else None."""
    info = preset_info(preset)
    train = str(info.get("data_train") or "")
    for name in data_recipes():
        if f"/prepared/{name}/" in f"/{train}":
            return name
    kind = (_yaml(*_key(runs.REPO_ROOT / preset)).get("model") or {}).get("kind")
    return kind if kind in data_recipes() else None


# --- live job state (never cached) ---

def job_state(run_dir: Path) -> dict | None:
    """{job, alive, progress, log} for a run folder's background job, or None."""
    job = jobs.read_job(run_dir)
    if job is None:
        return None
    return {"job": job, "alive": job.get("status") == "running",
            "progress": jobs.read_progress(run_dir), "log": jobs.tail(run_dir, 30)}


def all_jobs(include_dismissed: bool = False) -> list[tuple[str, dict]]:
    """(folder name, job.json) for every folder under results/ with a job, newest first;
    dismissed ones only when asked."""
    root = results_dir()
    found = []
    if root.is_dir():
        for path in root.iterdir():
            if (path / jobs.JOB_FILE).is_file():
                job = jobs.read_job(path)
                if job and (include_dismissed or not job.get("dismissed")):
                    found.append((path.name, job))
    return sorted(found, key=lambda item: item[1].get("started") or "", reverse=True)


def squad_run_ids() -> list[str]:
    """Runs with SQuAD scores: the baselines an imported run can be gated against."""
    return [r for r in run_ids() if (metrics(r) or {}).get("squad")]
