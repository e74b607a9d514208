"""Run-folder commands: infer, evaluate, import, runs."""
from __future__ import annotations

from pipeline import contest, runs
from pipeline.commands import emit
from pipeline.evaluate import gate_verdict


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "infer", help="decode a test set into results/<run>/predictions_<task>.npy (resumable)",
        description="Greedy decoding with a key/value cache on CPU into the contest .npy format. "
                    "A killed job keeps its finished rows; rerun the same command to continue. "
                    "Example: python -m pipeline infer --run smollm2-base --task math "
                    "--tests data/prepared/default/test.jsonl --base-only")
    p.add_argument("--run", required=True, help="run id under results/ (created if missing)")
    p.add_argument("--task", required=True, choices=runs.TASKS)
    p.add_argument("--tests", help="test rows (JSONL); for squad default: the contest's 2,067 "
                                   "dev items")
    who = p.add_mutually_exclusive_group()
    who.add_argument("--adapter", help="LoRA adapter checkpoint (default: the run's own)")
    who.add_argument("--base-only", action="store_true", help="decode with the base model")
    p.add_argument("--config", help="model preset YAML (default: the run's training preset, "
                                    "else configs/smollm2_135m_lora_cpu.yaml)")
    p.add_argument("--prompt", help="math prompt template name or text with {problem} "
                                    "(default: the run's training prompt, else 'minimal')")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--max-new-tokens", type=int,
                   help="default: squad 20; math 48, or with the run's own adapter its longest "
                        "training target + 8 tokens when that is longer")
    p.add_argument("--min-new-tokens", type=int, help="default: math 0, squad 1")
    p.add_argument("--limit", type=int, help="only the first N test rows")
    p.add_argument("--bucket", type=int,
                   help="prefill chunk in tokens; prompt lengths round up to it (default: 32)")
    p.add_argument("--restart", action="store_true", help="discard rows decoded before")
    p.add_argument("--reuse", action="store_true",
                   help="base model only: copy the rows of another run in the results folder "
                        "that decoded the same tests with the same model, settings, batch size, "
                        "decoder and versions instead of decoding (recorded as reused_from)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_infer)

    p = subparsers.add_parser(
        "evaluate", help="score a run into metrics.json + samples_<task>.jsonl (no inference)",
        description="Math under every rule and per type, SQuAD (MindFormers and official), "
                    "trainable ratio, contest score and the SQuAD 90%% gate.")
    p.add_argument("--run", required=True, help="run id or run folder")
    p.add_argument("--baseline", help="run to gate SQuAD against and compare per type")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_evaluate)

    p = subparsers.add_parser(
        "import", help="make a run folder from NPU contest files (.npy, tests, logs)",
        description="Bring an NPU run's files into results/<name>/ and score it like any run. "
                    "Give math (--predictions with --tests), SQuAD (--squad-predictions), or both. "
                    "Phase-2 (multiple-choice) prediction files are refused.",
        epilog="example: python -m pipeline import --predictions result_npy.npy --tests test.jsonl "
               "--squad-predictions squad_npy.npy --train-log worker_0.log "
               "--baseline npu-base --name npu-r8")
    p.add_argument("--predictions", help="contest prediction .npy of the math test set")
    p.add_argument("--tests", help="the math test rows it answers: JSON Lines of "
                                   "{problem, solution}, in prediction order")
    p.add_argument("--squad-predictions", metavar="S.npy",
                   help="contest prediction .npy of the SQuAD eval (row i answers item i)")
    p.add_argument("--squad", metavar="PATH",
                   help="SQuAD eval set the predictions answer: dev-v1.1.json (the contest's "
                        "2,067 items are built from it) or tests_squad.jsonl rows "
                        "(default: data/squad/dev-v1.1.json)")
    p.add_argument("--partial", action="store_true",
                   help="fewer SQuAD predictions than items: score them against the first items "
                        "(as score-squad --partial); without it the counts must agree")
    p.add_argument("--train-log", help="MindFormers training log (trainable parameter count)")
    p.add_argument("--eval-log", help="MindFormers SQuAD evaluation log (F1/EM, used when there "
                                      "are no --squad-predictions)")
    p.add_argument("--baseline", metavar="RUN",
                   help="run to gate SQuAD against (default: the contest's base Llama3-8B scores)")
    p.add_argument("--prompt", help="prompt template the math predictions were made with")
    p.add_argument("--name", required=True, help="new run id")
    p.add_argument("--force", action="store_true", help="overwrite an existing run of that name")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_import)

    p = subparsers.add_parser("runs", help="list runs with their headline numbers")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_list)


def _infer(args) -> int:
    from pipeline.infer import infer
    result = infer(runs.run_dir(args.run, create=True), args.task, args.tests,
                   adapter=args.adapter, base_only=args.base_only, preset_path=args.config,
                   prompt=args.prompt, batch_size=args.batch_size,
                   max_new_tokens=args.max_new_tokens, min_new_tokens=args.min_new_tokens,
                   limit=args.limit, restart=args.restart, bucket=args.bucket, reuse=args.reuse,
                   command=args.command_line)
    emit(result.as_dict(), args.json, lambda r: (
        f"{r['predictions']}: {r['rows']} rows reused from {r['reused_from']} (same model, "
        "tests, settings, batch size, decoder and versions; nothing decoded)"
        if r.get("reused_from") else
        f"{r['predictions']}: {r['rows']} rows ({r['decoded']} decoded now, "
        f"{r['new_tokens']} tokens in {r['seconds']} s incl. {r['compile_seconds']} s compiling)"))
    return 0


def _evaluate(args) -> int:
    from pipeline.evaluate import evaluate, render_report
    emit(evaluate(args.run, baseline=args.baseline), args.json, render_report)
    return 0


def _import(args) -> int:
    from pipeline.evaluate import render_report
    from pipeline.importer import import_run
    result = import_run(args.name, args.predictions, args.tests, args.train_log, args.eval_log,
                        squad_predictions=args.squad_predictions, squad=args.squad,
                        baseline=args.baseline, partial=args.partial, prompt=args.prompt, force=args.force,
                        command=args.command_line)

    def human(r):
        text = render_report(r)
        return "\n".join([text] + [f"warning: {w}" for w in r["warnings"]])
    emit(result, args.json, human)
    return 0


def run_summary(path) -> dict:
    """Headline numbers of one run folder (missing metrics give None)."""
    manifest = runs.read_manifest(path)
    metrics_path = path / "metrics.json"
    m = runs.read_json(metrics_path) if metrics_path.is_file() else {}
    math, squad = m.get("math"), m.get("squad")
    return {
        "run_id": path.name, "kind": manifest.get("kind"),
        "model": (manifest.get("model") or {}).get("name"),
        "math_accuracy": math["rules"][math["headline_rule"]]["accuracy"] if math else None,
        "math_rows": math["total"] if math else None,
        "squad_f1": squad["mindformers"]["f1"] if squad else None,
        "squad_em": squad["mindformers"]["em"] if squad else None,
        "gate_pass": squad["gate"]["pass"] if squad and squad.get("gate") else None,
        "gate": gate_verdict((squad or {}).get("gate"), manifest.get("kind")),
        "gate_em_vacuous": bool(squad and squad.get("gate")
                                and contest.em_gate_vacuous(squad["gate"])),
        "trainable_ratio": m.get("trainable_ratio"), "score": m.get("score"),
        "evaluated": m.get("evaluated"),
    }


def _fmt(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _list(args) -> int:
    rows = [run_summary(p) for p in runs.list_runs()]

    def human(rows):
        if not rows:
            return f"no runs under {runs.RESULTS_DIR}"
        head = (f"{'run':<28}{'kind':<11}{'math':>8}{'F1':>8}{'EM':>8}{'gate':>11}{'ratio':>11}"
                f"{'score':>8}")
        lines = [head]
        for r in rows:
            gate = (r["gate"] or "-") + ("*" if r["gate_em_vacuous"] else "")
            acc = "-" if r["math_accuracy"] is None else f"{100 * r['math_accuracy']:.1f}%"
            lines.append(f"{r['run_id'][:27]:<28}{(r['kind'] or '-'):<11}{acc:>8}"
                         f"{_fmt(r['squad_f1'], '.2f'):>8}{_fmt(r['squad_em'], '.2f'):>8}{gate:>11}"
                         f"{_fmt(r['trainable_ratio'], '.3g'):>11}{_fmt(r['score'], '.4f'):>8}")
        lines.append("math: accuracy under the contest's rule (exact value); gate 'reference': a "
                     "baseline its fine-tunes are gated against")
        if any(r["gate_em_vacuous"] for r in rows):
            lines.append(f"* {contest.EM_VACUOUS_NOTE}")
        return "\n".join(lines)
    emit(rows, args.json, human)
    return 0
