"""Facts of the contest (docs/contest.md): score formula, thresholds, leaderboard.

Everything here is a constant or a pure function so the CLI, the evaluation
stage and the dashboard agree on one number.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import PipelineError

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
LEADERBOARD_CSV = DATA_DIR / "leaderboard_phase1.csv"

LLAMA3_8B_TOTAL_PARAMS = 8_030_000_000  # what the contest divided by ("8030 M" in the log)
INTERNLM_7B_TOTAL_PARAMS = 7_321_000_000  # phase 2

# SQuAD "original ability" of the base Llama3-8B, and the 90% retention gate.
BASE_SQUAD_F1 = 59.87023775108988
BASE_SQUAD_EM = 44.17029511369134
RETENTION = 0.9
SQUAD_F1_THRESHOLD = BASE_SQUAD_F1 * RETENTION
SQUAD_EM_THRESHOLD = BASE_SQUAD_EM * RETENTION


def contest_score(accuracy: float, ratio: float, phase: int = 1) -> float:
    """Contest score from math accuracy (0..1) and trainable ratio (0..1).

    Phase 1: (1 - ratio) * 0.3 + accuracy * 0.7.
    Phase 2: (1 - 10 * ratio) * 0.3 + accuracy * 0.7.
    Raises ValueError for out-of-range inputs or an unknown phase.
    """
    if not 0.0 <= accuracy <= 1.0:
        raise ValueError(f"accuracy must be in 0..1, got {accuracy}")
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"ratio must be in 0..1, got {ratio}")
    if phase == 1:
        return (1.0 - ratio) * 0.3 + accuracy * 0.7
    if phase == 2:
        return (1.0 - 10.0 * ratio) * 0.3 + accuracy * 0.7
    raise ValueError(f"phase must be 1 or 2, got {phase}")


def trainable_ratio(trainable: int, total: int = LLAMA3_8B_TOTAL_PARAMS) -> float:
    if total <= 0:
        raise ValueError(f"total parameters must be positive, got {total}")
    if trainable < 0 or trainable > total:
        raise ValueError(f"trainable parameters must be in 0..{total}, got {trainable}")
    return trainable / total


EM_VACUOUS_NOTE = ("the baseline's EM is 0, so the EM half passes whatever the run does: "
                   "F1 is the real test")


def em_gate_vacuous(gate: dict) -> bool:
    """True when the EM half of a gate cannot fail (a baseline with EM 0: threshold 0)."""
    threshold = gate.get("em_threshold")
    return threshold is not None and threshold <= 0


def retention_gate(f1: float, em: float, base_f1: float = BASE_SQUAD_F1,
                   base_em: float = BASE_SQUAD_EM) -> dict:
    """The 90% SQuAD gate: both F1 and EM must keep >= 90% of the base's.

    With a base EM of 0 the EM half always passes (em_gate_vacuous): F1 decides."""
    f1_min, em_min = base_f1 * RETENTION, base_em * RETENTION
    return {
        "f1": f1, "em": em, "base_f1": base_f1, "base_em": base_em,
        "f1_threshold": f1_min, "em_threshold": em_min,
        "f1_pass": f1 >= f1_min, "em_pass": em >= em_min,
        "pass": f1 >= f1_min and em >= em_min,
    }


@dataclass(frozen=True)
class LeaderboardEntry:
    rank: int
    team: str
    accuracy: float  # 0..1
    ratio: float
    score: float
    trainable_params: int
    lora: str
    squad_f1: float | None
    squad_em: float | None
    train_data: str
    train_notes: str


def _opt_float(text: str) -> float | None:
    return float(text) if text.strip() else None


def load_leaderboard(path: Path = LEADERBOARD_CSV) -> list[LeaderboardEntry]:
    """The 20 published phase-1 teams (data/leaderboard_phase1.csv), best first."""
    try:
        with open(path, encoding="utf-8", newline="") as fh:
            rows = list(csv.DictReader(fh))
    except OSError as exc:
        raise PipelineError(f"cannot read leaderboard: {exc.strerror}", path) from exc
    entries = []
    for line_no, row in enumerate(rows, start=2):
        try:
            entries.append(LeaderboardEntry(
                rank=int(row["rank"]), team=row["team"],
                accuracy=float(row["math_acc_pct"]) / 100.0,
                ratio=float(row["param_ratio"]), score=float(row["score_reported"]),
                trainable_params=int(row["trainable_params_implied"]), lora=row["lora"],
                squad_f1=_opt_float(row["squad_f1_reported"]),
                squad_em=_opt_float(row["squad_em_reported"]),
                train_data=row["train_data"], train_notes=row["train_notes"]))
        except (KeyError, ValueError) as exc:
            raise PipelineError(f"line {line_no}: bad leaderboard row ({exc})", path) from exc
    return sorted(entries, key=lambda e: e.rank)


def leaderboard_rank(score: float, entries: list[LeaderboardEntry] | None = None) -> int:
    """Rank (1-based) a score would take among the published phase-1 teams.

    Ties go to the published team (a new entry must beat a score to pass it).
    """
    entries = load_leaderboard() if entries is None else entries
    return rank_among(score, [e.score for e in entries])


def rank_among(score: float, scores) -> int:
    """Rank (1-based) of `score` among published `scores`; a tie goes to the published one."""
    return 1 + sum(1 for s in scores if s >= score)
