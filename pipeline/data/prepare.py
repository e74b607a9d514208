"""Run a data recipe: raw rows -> train/validation/test files plus manifest.json.

Each step is a small pure function over lists of row dicts ``{"problem", "solution",
"type"}``; ``prepare`` chains them in the order recipes.py documents and writes the outputs.
Everything random draws from ``random.Random`` seeded by the recipe, so the same recipe gives
the same files (manifest.json has no timestamp for that reason).

Outputs in ``output.dir``:
- ``test.jsonl``: ``{"id": "math-00000", "problem", "solution", "type"}``, raw contest
  solutions (graded against the true answer; docs/run_format.md tests_math.jsonl).
- ``train.jsonl`` / ``validation.jsonl``: ``{"id", "problem", "solution", "type", "target",
  "prompt"}`` (target = rewritten answer; prompt = rendered template, before the wrapper).
- ``train_conversation.json`` / ``validation_conversation.json``: the contest kit's
  conversation format, a JSON array of ``{"id", "conversations": [{"from": "human",
  "value": prompt}, {"from": "gpt", "value": target}]}``.
- ``train.mindrecord`` / ``validation.mindrecord`` (+ ``.db``): see mindrecord.py.
- ``manifest.json``: recipe, steps with row counts, counts per type per split, files with
  sha256, rows over seq_length.
"""
from __future__ import annotations

import json
import random
from collections import Counter, defaultdict
from pathlib import Path

from pipeline import fileio
from pipeline.data import io
from pipeline.data.generate import generate_rows
from pipeline.data.prompts import build_prompt, full_template, render_prompt
from pipeline.data.recipes import EASY_FIRST, Recipe, SamplingConfig
from pipeline.data.rewrite import rewrite_target
from pipeline.errors import PipelineError
from pipeline.problems import extract_operands


# ---- steps (pure) ----------------------------------------------------------------------

def split_by_problem(rows: list[dict], size: float, rng: random.Random) -> tuple[list[dict], list[dict]]:
    """(picked, rest): ``size`` unique problems (a fraction < 1 or a count) with all their rows.

    No problem ends up on both sides. Order within each side follows ``rows``.
    """
    problems = list(dict.fromkeys(row["problem"] for row in rows))
    count = int(size) if size >= 1 else round(size * len(problems))
    if count <= 0:
        return [], list(rows)
    rng.shuffle(problems)
    chosen = set(problems[:count])
    picked = [r for r in rows if r["problem"] in chosen]
    rest = [r for r in rows if r["problem"] not in chosen]
    return picked, rest


def drop_types(rows: list[dict], names) -> list[dict]:
    names = set(names)
    return [r for r in rows if r["type"] not in names]


def filter_power(rows: list[dict], max_exponent: int | None) -> list[dict]:
    """Drop power problems whose exponent N exceeds ``max_exponent`` (None: keep all)."""
    if max_exponent is None:
        return rows
    kept = []
    for row in rows:
        if row["type"] == "power":
            ops = extract_operands(row["problem"], "power")
            if ops is None or int(ops["n"]) > max_exponent:
                continue
        kept.append(row)
    return kept


def allocate(available: dict[str, int], total: int, weights: dict[str, float]) -> dict[str, int]:
    """Rows per type summing to min(total, sum(available)), proportional to ``weights``.

    A type that has fewer rows than its share gives all it has and the shortfall goes to the
    others (water-filling); leftover rows from rounding go to the largest remainders.
    """
    targets = {t: 0 for t in available}
    open_types = [t for t in available if available[t] > 0 and weights.get(t, 0) > 0]
    remaining = min(total, sum(available[t] for t in open_types))
    while remaining > 0 and open_types:
        weight_sum = sum(weights[t] for t in open_types)
        exact = {t: remaining * weights[t] / weight_sum for t in open_types}
        full = [t for t in open_types if targets[t] + exact[t] >= available[t]]
        if full:  # these types are exhausted; hand out what they have and go again
            for t in full:
                remaining -= available[t] - targets[t]
                targets[t] = available[t]
            open_types = [t for t in open_types if t not in full]
            continue
        floors = {t: int(exact[t]) for t in open_types}
        for t in open_types:
            targets[t] += floors[t]
        left = remaining - sum(floors.values())
        for t in sorted(open_types, key=lambda t: exact[t] - floors[t], reverse=True)[:left]:
            targets[t] += 1
        remaining = 0
    return targets


def sample_rows(rows: list[dict], config: SamplingConfig, rng: random.Random) -> list[dict]:
    """Per-type sampling (natural / balanced / weights), caps, then ordering."""
    groups: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        groups[row["type"]].append(row)
    available = {t: len(g) for t, g in groups.items()}
    if config.mode == "natural":
        total = config.total or len(rows)
        targets = allocate(available, total, {t: float(n) for t, n in available.items()})
    elif config.mode == "balanced":
        targets = allocate(available, config.total, {t: 1.0 for t in available})
    else:
        targets = allocate(available, config.total, config.weights)
    for type_name, cap in config.caps.items():
        if type_name in targets:
            targets[type_name] = min(targets[type_name], cap)
    picked: dict[str, list[dict]] = {}
    for type_name in groups:  # first-seen order; fixed for a given input and seed
        group = groups[type_name]
        n = targets.get(type_name, 0)
        picked[type_name] = group if n >= len(group) else rng.sample(group, n)
    if config.order == "curriculum":
        out = []
        for type_name in sorted(picked, key=EASY_FIRST.index):
            part = list(picked[type_name])
            rng.shuffle(part)
            out.extend(part)
        return out
    chosen = [r for part in picked.values() for r in part]
    if config.order == "shuffle":
        rng.shuffle(chosen)
        return chosen
    keep = {id(r) for r in chosen}  # "source": the input order
    return [r for r in rows if id(r) in keep]


def add_targets(rows: list[dict], recipe: Recipe) -> list[dict]:
    """Rows with ``target`` (rewritten answer) and ``prompt`` (rendered template) added."""
    out = []
    for row in rows:
        target = rewrite_target(row["problem"], row["solution"], row["type"],
                                recipe.answers.decimals_for(row["type"]),
                                recipe.answers.working.get(row["type"]))
        prompt = render_prompt(recipe.prompt.template, problem=row["problem"])
        out.append({**row, "target": target, "prompt": prompt})
    return out


def with_ids(rows: list[dict], prefix: str) -> list[dict]:
    width = max(5, len(str(len(rows))))
    return [{"id": f"{prefix}-{i:0{width}d}", **row} for i, row in enumerate(rows)]


# ---- writers -----------------------------------------------------------------------------

def write_conversation(path, rows: list[dict]) -> int:
    """The contest kit's conversation JSON array (one element per line), written atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    items = [json.dumps({"id": r["id"], "conversations": [
        {"from": "human", "value": r["prompt"]}, {"from": "gpt", "value": r["target"]}]},
        ensure_ascii=False) for r in rows]
    fileio.atomic_write(path, "[\n" + ",\n".join(items) + ("\n" if items else "") + "]\n")
    return len(rows)


def load_tokenizer_by_name(name: str):
    if name == "smollm2":
        from pipeline.model.tokenizer import load_tokenizer
        return load_tokenizer()
    raise PipelineError(f"unknown tokenizer {name!r}")


# ---- the whole recipe ----------------------------------------------------------------------

def load_source(recipe: Recipe, progress: bool = True) -> tuple[list[dict], dict]:
    """Rows from the recipe's source, type-tagged; and a summary for the manifest."""
    src = recipe.source
    if src.generate is not None:
        from pipeline.progress import Progress
        rows = []
        with Progress(src.generate, "generate", unit="row", disable=not progress) as bar:
            for row in generate_rows(src.generate, src.seed, src.types, with_type=True):
                rows.append(row)
                if len(rows) % 10_000 == 0:
                    bar.update(10_000)
            bar.update(len(rows) % 10_000)
        return rows, {"generate": src.generate, "seed": src.seed,
                      "types": list(src.types) if src.types else None}
    report = io.ImportReport(src.file)
    rows = io.tag_types(io.read_contest_rows(src.file, report), progress=progress)
    return rows, {"file": src.file, "sha256": io.sha256_file(src.file),
                  "malformed_count": report.malformed_count,
                  "malformed": [{"line": n, "reason": r} for n, r in report.malformed]}


def prepare(recipe: Recipe, tokenizer=None, out_dir=None, progress: bool = True) -> dict:
    """Run every step of ``recipe`` and write its outputs; returns the manifest dict.

    tokenizer: overrides the recipe's (any object with ``encode(text,
    add_special_tokens=False).ids``); out_dir overrides ``output.dir``.
    Raises PipelineError for an unreadable source, an empty result, or overlong=error.
    """
    out = Path(out_dir or recipe.output.dir)
    rows, source = load_source(recipe, progress)
    splits, steps = run_steps(recipe, rows)
    out.mkdir(parents=True, exist_ok=True)
    files, overlong = _write_splits(out, splits, recipe, tokenizer, progress)
    manifest = {
        "recipe": {"name": recipe.name, "path": recipe.path, "config": recipe.raw},
        "seed": recipe.seed,
        "source": source,
        "steps": steps,
        "prompt": {"template": recipe.prompt.template, "wrapper": recipe.prompt.wrapper,
                   "text": full_template(recipe.prompt.template, recipe.prompt.wrapper)},
        "seq_length": recipe.output.seq_length,
        "record_length": recipe.output.seq_length + 1,
        "tokenizer": recipe.output.tokenizer if tokenizer is None else type(tokenizer).__name__,
        "splits": {name: {"rows": len(part), "by_type": io.type_counts(part)}
                   for name, part in splits.items()},
        "overlong": overlong,
        "files": files,
        "warnings": target_warnings(splits["train"]),
    }
    fileio.atomic_write(out / "manifest.json", json.dumps(manifest, ensure_ascii=False, indent=2) + "\n")
    manifest["dir"] = str(out)
    return manifest


# A target opening this common is learnt as *the* way to start an answer, for every prompt:
# 89% of `+(`/`-(` openings made SQuAD answers start with `+(` too (docs/experiments.md 10).
SHARED_OPENING_SHARE = 0.3


def shared_opening(targets: list[str], chars: int = 2) -> tuple[str, float]:
    """The most common first ``chars`` characters of the targets and their share."""
    counts = Counter(t.strip()[:chars] for t in targets)
    if not counts:
        return "", 0.0
    opening, n = counts.most_common(1)[0]
    return opening, n / len(targets)


def target_warnings(train_rows: list[dict]) -> list[str]:
    """What in the training targets may hurt the model beyond the recipe's own task."""
    opening, share = shared_opening([r["target"] for r in train_rows])
    if share < SHARED_OPENING_SHARE:
        return []
    return [f"{share:.0%} of the training targets start with {opening!r}: the model may learn "
            f"to start every answer that way, SQuAD's too (write something from the problem "
            f"first; docs/experiments.md section 10)"]


def run_steps(recipe: Recipe, rows: list[dict]) -> tuple[dict[str, list[dict]], list[dict]]:
    """The recipe's steps over source rows, in recipes.py's order: ({"train", "validation",
    "test"} rows with ids, targets and prompts; [{"step", "rows", "by_type"}] per step)."""
    rng = random.Random(recipe.seed)
    steps = []

    def step(name: str, rows: list[dict]) -> list[dict]:
        steps.append({"step": name, "rows": len(rows), "by_type": io.type_counts(rows)})
        return rows

    step("source", rows)
    if recipe.dedup:
        rows, _ = io.dedup_rows(rows)
        step("dedup", rows)
    test: list[dict] = []
    if recipe.split.test and recipe.split.test_scope == "source":
        test, rows = split_by_problem(rows, recipe.split.test, rng)
        step("split_test", rows)
    if recipe.drop_types:
        rows = step("drop_types", drop_types(rows, recipe.drop_types))
    if recipe.filters.power_max_exponent is not None:
        rows = step("filters", filter_power(rows, recipe.filters.power_max_exponent))
    if recipe.split.test and recipe.split.test_scope == "kept":
        test, rows = split_by_problem(rows, recipe.split.test, rng)
        step("split_test", rows)
    rows = step("sampling", sample_rows(rows, recipe.sampling, rng))
    validation: list[dict] = []
    if recipe.split.validation:
        validation, rows = split_by_problem(rows, recipe.split.validation, rng)
        step("split_validation", rows)
    if not rows:
        raise PipelineError("the recipe leaves no training rows (check drop_types, sampling "
                            "and split)", recipe.path)
    splits = {"train": with_ids(add_targets(rows, recipe), "train"),
              "validation": with_ids(add_targets(validation, recipe), "val"),
              "test": with_ids(test, "math")}
    return splits, steps


def _write_splits(out: Path, splits: dict[str, list[dict]], recipe: Recipe, tokenizer,
                  progress: bool) -> tuple[dict[str, dict], dict[str, dict]]:
    """Write each split in the recipe's formats; returns (files with rows, sha256 and bytes;
    overlong report per MindRecord split)."""
    files: dict[str, dict] = {}
    overlong: dict[str, dict] = {}
    if splits["test"]:
        io.write_jsonl(out / "test.jsonl", splits["test"], keys=("id", "problem", "solution", "type"))
        files["test.jsonl"] = {"rows": len(splits["test"])}
    for split_name in ("train", "validation"):
        part = splits[split_name]
        if not part:
            continue
        if "jsonl" in recipe.output.formats:
            io.write_jsonl(out / f"{split_name}.jsonl", part,
                           keys=("id", "problem", "solution", "type", "target", "prompt"))
            files[f"{split_name}.jsonl"] = {"rows": len(part)}
        if "conversation" in recipe.output.formats:
            write_conversation(out / f"{split_name}_conversation.json", part)
            files[f"{split_name}_conversation.json"] = {"rows": len(part)}
        if "mindrecord" in recipe.output.formats:
            tokenizer = tokenizer or load_tokenizer_by_name(recipe.output.tokenizer)
            report = _write_split_mindrecord(out / f"{split_name}.mindrecord", part, recipe,
                                             tokenizer, progress)
            files[f"{split_name}.mindrecord"] = {"rows": report["written"]}
            files[f"{split_name}.mindrecord.db"] = {}
            overlong[split_name] = {**report["overlong"], "max_tokens": report["max_tokens"],
                                    "mean_tokens": report["mean_tokens"]}
    for name, info in files.items():
        info["sha256"] = io.sha256_file(out / name)
        info["bytes"] = (out / name).stat().st_size
    return files, overlong


def _write_split_mindrecord(path: Path, part: list[dict], recipe: Recipe, tokenizer,
                            progress: bool) -> dict:
    from pipeline.data.mindrecord import write_mindrecord
    prompts = [build_prompt(r["problem"], recipe.prompt.template, recipe.prompt.wrapper)
               for r in part]
    return write_mindrecord(path, prompts, [r["target"] for r in part], tokenizer,
                            recipe.output.seq_length, types=[r["type"] for r in part],
                            overlong=recipe.output.overlong, progress=progress,
                            ids=[r["id"] for r in part])
