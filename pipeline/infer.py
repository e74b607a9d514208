"""Test rows -> contest predictions in a run folder (docs/run_format.md).

    infer(run, task, tests_path, ...) writes
      tests_<task>.jsonl        the rows answered, in order
      infer_<task>.jsonl        one row per finished sample, appended and flushed per batch
      predictions_<task>.npy    contest format (prompt + continuation), written at the end
      manifest.json             kind, model, adapter, data, prompt template, inference settings

A killed job keeps every finished batch; rerunning the same command continues with the
rows not yet in infer_<task>.jsonl. Rows are decoded in order of prompt length so a batch's
prompts pad to one bucket. The prompt is the one the run was trained with (its manifest's
``prompt_template.math``) unless --prompt says otherwise; SQuAD rows carry their own prompt.
"""
from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from pipeline import runs
from pipeline import baseline_reuse
from pipeline.baseline_reuse import decoder_name
from pipeline.decode import kernel_for
from pipeline.errors import PipelineError
from pipeline.progress import Progress

DEFAULT_PRESET = Path(__file__).resolve().parent.parent / "configs" / "smollm2_135m_lora_cpu.yaml"
DEFAULT_MATH_PROMPT = "minimal"
MAX_NEW_TOKENS = {"math": 48, "squad": 20}
MIN_NEW_TOKENS = {"math": 0, "squad": 1}   # the contest forced one token for SQuAD
# Prefill chunk (pipeline.decode): prompts are fed this many tokens per call. 32 for SQuAD
# too (prompts of 84-842 tokens): 64 saved ~2 s a run but held twice the activations,
# 1.88 vs 1.59 GB peak at batch 8 (bench/bench_decode.py squad_peak_rss_gb).
BUCKET = {"math": 32, "squad": 32}


@dataclass
class InferSettings:
    """What shapes the output; a resume must use the same (else pass restart=True)."""
    task: str
    prompt_template: str | None        # math: template text with {problem}; squad: None
    max_new_tokens: int
    min_new_tokens: int
    adapter: str | None                # adapter checkpoint path, None for the base model
    model: str                         # preset model kind

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class InferResult:
    run: Path
    task: str
    rows: int
    decoded: int          # rows decoded by this call (the rest were already finished)
    seconds: float
    new_tokens: int
    predictions: Path
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"run": str(self.run), "task": self.task, "rows": self.rows,
                "decoded": self.decoded, "seconds": round(self.seconds, 2),
                "new_tokens": self.new_tokens,
                "tokens_per_s": round(self.new_tokens / self.seconds, 2) if self.seconds else None,
                "predictions": str(self.predictions), **self.extra}


# ---------------------------------------------------------------- tests
def load_math_tests(path) -> list[dict]:
    """Math rows {"id", "problem", "solution", "type"} from JSON Lines (id/type filled in).

    Raises PipelineError naming the file and line for a row without problem/solution strings.
    """
    from pipeline.problems import classify
    path = Path(path)
    rows = runs.read_jsonl(path)
    if not rows:
        raise PipelineError("no test rows", path)
    out = []
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise PipelineError(f"line {i + 1}: expected a JSON object", path)
        for name in ("problem", "solution"):
            if not isinstance(row.get(name), str):
                raise PipelineError(f"line {i + 1}: missing or non-string field {name!r}", path)
        out.append({"id": str(row.get("id") or f"math-{i:05d}"), "problem": row["problem"],
                    "solution": row["solution"],
                    "type": row.get("type") or classify(row["problem"], row["solution"])})
    return out


def load_tests(task: str, path) -> list[dict]:
    """Test rows for a task; SQuAD without a path is the contest's 2,067 dev items."""
    if task == "math":
        if path is None:
            raise PipelineError("math inference needs --tests (JSON Lines of problem/solution rows)")
        return load_math_tests(path)
    from pipeline.data.squad import build_squad_eval, load_squad_eval
    return build_squad_eval() if path is None else load_squad_eval(path)


def prompts_for(task: str, tests: list[dict], template: str | None) -> list[str]:
    if task == "squad":
        return [row["prompt"] for row in tests]
    # replace, not format: LaTeX braces in a problem must never break the template
    return [template.replace("{problem}", row["problem"]) for row in tests]


# ---------------------------------------------------------------- progress file
def finished_rows(run: Path, task: str, rows: int) -> dict[int, dict]:
    """{index: infer row} already in infer_<task>.jsonl (indices past `rows` are ignored).

    A torn last line (the job died mid-write) is dropped; any other bad line is an error.
    """
    path = runs.task_file(run, "infer", task)
    if not path.is_file():
        return {}
    done = {}
    lines = path.read_text(encoding="utf-8").splitlines()
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            index = int(row["index"])
            str(row["continuation"])
        except (json.JSONDecodeError, KeyError, TypeError, ValueError):
            if n == len(lines):
                break  # torn write at the moment of a kill
            raise PipelineError(f"line {n}: not an inference row", path) from None
        if 0 <= index < rows:
            done[index] = row
    return done


def drop_torn_tail(path: Path) -> None:
    """Cut a half-written last line (the job was killed mid-write) so appends start clean."""
    if not path.is_file():
        return
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        with open(path, "r+b") as fh:
            fh.truncate(data.rfind(b"\n") + 1)


def rebuild_predictions(run: Path, task: str) -> Path:
    """Write predictions_<task>.npy from tests_<task>.jsonl + infer_<task>.jsonl.

    Raises PipelineError when some rows are not finished yet.
    """
    from pipeline.npy import save_predictions
    run = Path(run)
    manifest = runs.read_manifest(run)
    tests = (runs.read_jsonl(runs.task_file(run, "tests", task)))
    template = (manifest.get("prompt_template") or {}).get(task)
    done = finished_rows(run, task, len(tests))
    missing = [i for i in range(len(tests)) if i not in done]
    if missing:
        raise PipelineError(f"{len(missing)} of {len(tests)} rows not decoded yet "
                            f"(first: {missing[0]}); rerun infer to finish them", run)
    prompts = prompts_for(task, tests, template)
    out = runs.task_file(run, "predictions", task)
    save_predictions(out, [p + done[i]["continuation"] for i, p in enumerate(prompts)])
    return out


# ---------------------------------------------------------------- run setup
def _run_preset(manifest: dict, preset_path):
    """The preset a run was trained with, else the one given (default: SmolLM2)."""
    from pipeline.model.presets import load_preset, preset_from_dict
    config = manifest.get("config")
    if preset_path is None and isinstance(config, dict) and isinstance(config.get("model"), dict):
        model = dict(config["model"])
        if model.get("kind") != "tiny":
            model.pop("dims", None)   # Preset.as_dict records dims; only tiny may set them
        return preset_from_dict({**config, "model": model}, src="manifest.json config")
    return load_preset(preset_path or DEFAULT_PRESET)


def adapter_record(adapter, run: Path) -> str:
    """An adapter's path as a manifest records it. Inside the results folder: relative to the
    run folder, as train records its own ("adapter/step_400.ckpt", "../other/adapter/...";
    from a curve point, "../../adapter/step_100.ckpt"), so
    it holds in any clone and from any working directory (_adapter_for joins it back onto
    the run). Elsewhere: absolute."""
    adapter, run = Path(adapter).resolve(), Path(run).resolve()
    results = run.parent
    if results.name == "checkpoints" and (results.parent / "manifest.json").is_file():
        results = results.parent.parent   # an eval-checkpoints point: results/<run>/checkpoints/step_N
    if not adapter.is_relative_to(results):
        return str(adapter)
    return os.path.relpath(adapter, run)


def _adapter_for(run: Path, manifest: dict, adapter, base_only: bool) -> Path | None:
    if base_only:
        if adapter:
            raise PipelineError("--adapter and --base-only exclude each other")
        if manifest.get("kind") == "finetuned":
            raise PipelineError("this run holds a fine-tuned adapter; use another --run for "
                                "base-only inference", run)
        return None
    if adapter:
        return Path(adapter)
    recorded = (manifest.get("adapter") or {}).get("path")
    return run / recorded if recorded else None


def _training_manifest(adapter: Path | None) -> dict:
    """The manifest of the run that trained `adapter` (adapter/ sits inside the training run
    folder); {} when unknown."""
    if adapter is None:
        return {}
    manifest = Path(adapter).resolve().parent.parent / "manifest.json"
    return runs.read_json(manifest) if manifest.is_file() else {}


def _trained_prompt(adapter: Path | None) -> str | None:
    """The math prompt an adapter was trained with, from its run's manifest; None when unknown."""
    return (_training_manifest(adapter).get("prompt_template") or {}).get("math")


def _check_resume(run: Path, task: str, tests: list[dict], settings: InferSettings,
                  manifest: dict, restart: bool) -> None:
    """Refuse to mix rows decoded with other settings or for other tests (unless restart)."""
    infer_path = runs.task_file(run, "infer", task)
    if restart:
        infer_path.unlink(missing_ok=True)
        return
    if not infer_path.is_file():
        return
    old = ((manifest.get("inference") or {}).get(task) or {}).get("settings")
    if old is not None and old.get("adapter") and os.path.isabs(old["adapter"]):
        old = {**old, "adapter": adapter_record(old["adapter"], run)}  # compare in recorded form
    if old is not None and old != settings.as_dict():
        changed = sorted(k for k in settings.as_dict() if old.get(k) != settings.as_dict()[k])
        raise PipelineError(f"{infer_path.name} was decoded with other settings "
                            f"({', '.join(changed)}); pass --restart to start over", run)
    tests_path = runs.task_file(run, "tests", task)
    if tests_path.is_file():
        old_tests = runs.read_jsonl(tests_path)
        n = min(len(old_tests), len(tests))
        if old_tests[:n] != tests[:n]:
            raise PipelineError(f"{tests_path.name} holds other test rows than --tests; "
                                "pass --restart to start over", run)


def _record_manifest(run: Path, manifest: dict, preset, settings: InferSettings, tests_src,
                     tests: list[dict], adapter: Path | None, command: str | None,
                     batch_size: int, decoder: str, reused_from: str | None = None) -> None:
    from pipeline.model.params import MODEL_NAMES, exact_total_for, lora_trainable_for, total_params
    total = exact_total_for(preset.dims) if preset.model_kind == "tiny" else total_params(preset.model_kind)
    if settings.task == "squad":
        from pipeline.data.squad import SQUAD_PROMPT
        used = SQUAD_PROMPT   # each row carries its own rendering of it
    else:
        used = settings.prompt_template
    fields = {
        "model": {"preset": preset.model_kind, "name": MODEL_NAMES[preset.model_kind],
                  "total_params": total},
        "prompt_template": {**(manifest.get("prompt_template") or {}), settings.task: used},
    }
    if manifest.get("kind") != "finetuned" or adapter is None:
        fields["kind"] = "finetuned" if adapter else "baseline"
    if adapter is None:
        fields["adapter"] = None
    elif not manifest.get("adapter"):
        side = adapter.with_suffix(".json")
        spec = json.loads(side.read_text()) if side.is_file() else {}
        rank, targets = spec.get("rank", preset.lora.rank), spec.get("targets", list(preset.lora.targets))
        first = int(spec.get("first_layer", preset.lora.first_layer))
        fields["adapter"] = {"path": adapter_record(adapter, run), "rank": rank,
                             "alpha": spec.get("alpha", preset.lora.alpha),
                             "dropout": spec.get("dropout", preset.lora.dropout), "targets": targets,
                             **({"first_layer": first} if first else {}),
                             "trainable_params": lora_trainable_for(preset.dims, rank, targets, first)}
    data = dict(manifest.get("data") or {})
    data[f"{settings.task}_tests"] = {"path": str(tests_src) if tests_src else "contest SQuAD dev",
                                      "sha256": runs.file_sha256(runs.task_file(run, "tests", settings.task)),
                                      "rows": len(tests)}
    fields["data"] = data
    inference = dict(manifest.get("inference") or {})
    inference[settings.task] = {"settings": settings.as_dict(), "batch_size": batch_size,
                                "decoder": decoder,
                                "command": command or " ".join(sys.argv)}
    if reused_from:
        inference[settings.task]["reused_from"] = reused_from
    fields["inference"] = inference
    if not manifest.get("command"):
        fields["command"] = command or " ".join(sys.argv)
    if "config" not in manifest:
        fields["config"] = preset.as_dict()
    runs.update_manifest(run, **fields)


def default_new_tokens(task: str, manifest: dict, base_only: bool = False,
                       adapter: Path | None = None) -> int:
    """MAX_NEW_TOKENS[task], or for math with an adapter, enough for the longest training
    target plus a margin: targets with working run to ~100 tokens and would be cut before
    their answer at 48. The length comes from this run's manifest, or else from the manifest
    of the run that trained `adapter` (an ``--adapter`` from another run)."""
    def longest_in(m: dict):
        return ((m.get("data") or {}).get("train") or {}).get("longest_target_tokens")
    if task != "math" or base_only:
        return MAX_NEW_TOKENS[task]
    longest = longest_in(manifest) or longest_in(_training_manifest(adapter))
    return max(MAX_NEW_TOKENS[task], int(longest) + 8) if longest else MAX_NEW_TOKENS[task]


# ---------------------------------------------------------------- the stage
@dataclass
class InferOptions:
    """How infer decodes (the `infer` command's flags); all optional.

    adapter: checkpoint to use instead of the run's own; base_only: no adapter at all;
    preset_path: preset when the run records none (default: SmolLM2); prompt: math template
    name or text instead of the trained one; max/min_new_tokens: None takes the task's
    default; limit: first N test rows; restart: discard rows decoded with other settings;
    bucket: prefill chunk (None: BUCKET[task]); command: recorded in the manifest;
    reuse: for the base model, copy the rows of another run in the results folder that
    decoded the same tests with the same key (pipeline.baseline_reuse) instead of decoding.
    """
    adapter: str | Path | None = None
    base_only: bool = False
    preset_path: str | Path | None = None
    prompt: str | None = None
    batch_size: int = 8
    max_new_tokens: int | None = None
    min_new_tokens: int | None = None
    limit: int | None = None
    restart: bool = False
    bucket: int | None = None
    command: str | None = None
    quiet: bool = False
    reuse: bool = False

    def check(self, task: str) -> None:
        if task not in runs.TASKS:
            raise PipelineError(f"unknown task {task!r}; expected one of {', '.join(runs.TASKS)}")
        if self.batch_size < 1:
            raise PipelineError(f"--batch-size must be at least 1, got {self.batch_size}")
        if self.limit is not None and self.limit < 1:
            raise PipelineError(f"--limit must be positive, got {self.limit}")


def infer(run: Path, task: str, tests_path=None, **options) -> InferResult:
    """Decode every test row of `task` into run folder `run` (created if needed);
    `options` are InferOptions' fields.

    Raises PipelineError on bad tests, a missing adapter, or a resume whose settings or
    tests differ from the rows already decoded (pass restart=True to discard them).
    """
    opts = InferOptions(**options)
    opts.check(task)
    run = Path(run)
    run.mkdir(parents=True, exist_ok=True)
    manifest = runs.read_manifest(run) if (run / "manifest.json").is_file() else {}
    tests = load_tests(task, tests_path)[:opts.limit]
    preset = _run_preset(manifest, opts.preset_path)
    adapter_path = _adapter_for(run, manifest, opts.adapter, opts.base_only)
    if adapter_path is not None and not adapter_path.is_file():
        raise PipelineError("adapter checkpoint not found", adapter_path)
    settings = InferSettings(
        task=task, prompt_template=_math_template(task, manifest, adapter_path, opts.prompt),
        max_new_tokens=opts.max_new_tokens or default_new_tokens(task, manifest, opts.base_only,
                                                                 adapter_path),
        min_new_tokens=MIN_NEW_TOKENS[task] if opts.min_new_tokens is None else opts.min_new_tokens,
        adapter=None if adapter_path is None else adapter_record(adapter_path, run),
        model=preset.model_kind)
    _check_resume(run, task, tests, settings, manifest, opts.restart)
    decoder = decoder_name(kernel_for(preset.dims))   # what decodes here, or what a reuse must match
    source = _reuse_source(run, task, tests, settings, preset, adapter_path, opts, decoder)
    reused_from = baseline_reuse.origin(source, task) if source is not None else None
    runs.write_jsonl(runs.task_file(run, "tests", task), tests)
    _record_manifest(run, manifest, preset, settings, tests_path, tests, adapter_path, opts.command,
                     opts.batch_size, decoder, reused_from)
    if source is not None:
        baseline_reuse.copy_rows(source, run, task, len(tests))

    done = finished_rows(run, task, len(tests))
    todo = [i for i in range(len(tests)) if i not in done]
    began = time.monotonic()
    new_tokens, compile_s = 0, 0.0
    if todo:
        new_tokens, compile_s = _decode_todo(run, tests, todo, len(done), settings,
                                             preset, adapter_path, opts)
    out = rebuild_predictions(run, task)
    extra = {"compile_seconds": round(compile_s, 1)}
    if reused_from:
        extra["reused_from"] = reused_from
    return InferResult(run, task, len(tests), len(todo), time.monotonic() - began, new_tokens, out,
                       extra=extra)


def _reuse_source(run: Path, task: str, tests: list[dict], settings: InferSettings, preset,
                  adapter_path: Path | None, opts: InferOptions, decoder: str) -> Path | None:
    """The run whose rows `--reuse` copies: only for the base model, only into a run with
    no rows of its own yet, and only when one matches (else None: decode as usual)."""
    if not opts.reuse or adapter_path is not None or finished_rows(run, task, len(tests)):
        return None
    key = baseline_reuse.reuse_key(settings.as_dict(), opts.batch_size, preset.as_dict()["model"],
                                   decoder=decoder)
    return baseline_reuse.find_source(run, task, tests, key)


def _math_template(task: str, manifest: dict, adapter: Path | None, prompt: str | None) -> str | None:
    """The math prompt: --prompt, else the one the run or its adapter was trained with, else
    DEFAULT_MATH_PROMPT; None for SQuAD (rows carry their own)."""
    from pipeline.data.prompts import template_text
    if task != "math":
        return None
    trained = (manifest.get("prompt_template") or {}).get("math") or _trained_prompt(adapter)
    template = template_text(prompt) if prompt else (trained or template_text(DEFAULT_MATH_PROMPT))
    if "{problem}" not in template:
        raise PipelineError(f"prompt template {template!r} has no {{problem}} field")
    return template


def _decode_todo(run: Path, tests: list[dict], todo: list[int], already: int,
                 settings: InferSettings, preset, adapter_path: Path | None,
                 opts: InferOptions) -> tuple[int, float]:
    """Decode rows `todo` in length order (similar lengths share a bucket), appending to
    infer_<task>.jsonl per batch; returns (new tokens, seconds spent compiling graphs)."""
    from pipeline.model.tokenizer import load_tokenizer
    tok = load_tokenizer()
    prompts = prompts_for(settings.task, tests, settings.prompt_template)
    ids = {i: tok.encode(prompts[i], add_special_tokens=False).ids for i in todo}
    order = sorted(todo, key=lambda i: (len(ids[i]), i))
    bucket = opts.bucket or BUCKET[settings.task]
    longest = max(len(ids[i]) for i in todo)
    decoder = _load_decoder(preset, adapter_path, opts.batch_size, bucket,
                            max_len=cache_length(longest, bucket, settings.max_new_tokens))
    infer_path = runs.task_file(run, "infer", settings.task)
    drop_torn_tail(infer_path)
    with open(infer_path, "a", encoding="utf-8") as fh, \
            Progress(len(tests), f"infer {settings.task}", unit="row", initial=already,
                     disable=True if opts.quiet else None) as bar:
        new_tokens = _decode_batches(decoder, tok, [(i, ids[i]) for i in order], settings, fh, bar)
    return new_tokens, decoder.compile_seconds


def cache_length(longest_prompt: int, bucket: int, max_new_tokens: int) -> int:
    """Cache slots a decode needs: the longest prompt rounded up to the bucket (prompts are
    left-padded to it) plus the new tokens."""
    return -(-longest_prompt // bucket) * bucket + max_new_tokens


# The last decoder this process built, by shape: a second infer in the same process (each
# checkpoint of eval-checkpoints) swaps its weights in instead of compiling the same graphs
# again (~55 s a shape for SmolLM2 on 2 cores). One entry, so memory holds one model.
_LAST_DECODER: dict = {}


def _load_decoder(preset, adapter_path: Path | None, batch_size: int, bucket: int, max_len: int):
    """GreedyDecoder over the preset's weights with the adapter merged, its cache at least
    `max_len` long (the longest prompt rounded up to the bucket, plus the new tokens)."""
    from pipeline.decode import GreedyDecoder
    from pipeline.model.build import model_weights, setup_context
    setup_context()
    weights, dims = model_weights(preset, adapter_path)
    shape = (dims, batch_size, bucket)
    if _LAST_DECODER.get("shape") == shape:
        decoder = _LAST_DECODER["decoder"]
        decoder.set_weights(weights, consume=True)
        decoder.compile_seconds = 0.0     # this call's compiles only
        decoder.ensure_capacity(max_len)
        return decoder
    _LAST_DECODER.clear()                 # drop the old one before building the next
    # consume: the merged weights are folded into the decoder's own layout as they are read,
    # so memory never holds both copies
    decoder = GreedyDecoder(weights, dims, batch_size=batch_size, bucket=bucket, max_len=max_len,
                            consume_weights=True)
    _LAST_DECODER.update(shape=shape, decoder=decoder)
    return decoder


def _decode_batches(decoder, tok, rows: list[tuple[int, list[int]]], settings: InferSettings,
                    fh, bar) -> int:
    """Decode (index, prompt ids) rows batch by batch, one JSON line per row, flushed per
    batch; returns the new tokens."""
    new_tokens, started = 0, time.monotonic()
    for at in range(0, len(rows), decoder.batch_size):
        batch = rows[at:at + decoder.batch_size]
        outs = decoder.generate([ids for _, ids in batch], settings.max_new_tokens,
                                settings.min_new_tokens)
        for (i, _), gen in zip(batch, outs):
            row = {"index": i, "continuation": tok.decode(gen.tokens),
                   "seconds": round(gen.seconds, 4), "new_tokens": len(gen.tokens)}
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
            new_tokens += len(gen.tokens)
        fh.flush()
        elapsed = time.monotonic() - started
        bar.update(len(batch), tok_s=f"{new_tokens / elapsed:.1f}" if elapsed else "-")
    return new_tokens
