"""Training throughput and peak memory: MindFormers LoRA (ours) vs PyTorch + PEFT LoRA.

Same model (SmolLM2-135M from the same GGUF), same LoRA (the default preset's rank, alpha,
dropout and target layers on both sides; --lora-* flags override them for both), same batches
(the preset's batch 8 x seq 96 from the prepared MindRecord, or random tokens if there is
none), same micro-batching (the peer accumulates gradients over passes of --peer-micro rows,
by default the preset's micro_batch, as our `microN` variants sum them in the graph), same
machine, one script run. Each configuration runs in its own subprocess so its peak RSS is
its own; after loading and compiling one at a time, they take turns one step each, so a
slow spell of this shared host falls on all of them (--sequential: one after another);
tokens/s counts every position fed (batch x seq), identical for both sides; the first
`--warmup` steps (graph compile) are not timed.

    python bench/bench_train.py                       # ours (the default preset) vs peer
    python bench/bench_train.py --variants head_trim,head_trim+micro2,head_trim+micro4 --steps 6
    python bench/bench_train.py --lora-dropout 0      # both sides without LoRA dropout
    python bench/bench_train.py --lora-rank 8 --lora-alpha 16 --lora-targets wq,wv   # contest baseline LoRA

Variants of ours (combinable with '+'):
    baseline    MindFormers LlamaForCausalLM loss over every position (what train.py did first)
    head_trim   LM head + cross-entropy only on the positions that carry a label
    o1          MindSpore memory_optimize_level O1 (memory reuse across the graph)
    recompute   recompute each decoder layer in the backward pass (gradient checkpointing)
    microN      gradients summed over batch/N passes of N rows (train.micro_batch: N); the
                update is the whole batch's, peak memory follows the N-row pass
    profile     MindSpore's profiler over the timed steps; adds "time_by_op_type" (% of kernel
                time per op type) and keeps the per-op detail in artifacts/bench_profile/<variant>/.
                The profiler slows the steps: read its shares, not its tokens/s
    mindpet_lora  mindpet's own LoRADense forward (scale on the output) instead of ours (on B)
    mf_layers   MindFormers' own norm, attention and feed-forward layers instead of the fused
                ones (pipeline.model.fused_layers)
    interop1    MindSpore inter_op_parallel_num=1: one kernel at a time
    threadsN    MindSpore runtime_num_threads=N: the CPU kernels' thread pool
    cache       MindSpore's compile cache (keyed as train.py keys it); the variant runs twice,
                cold then warm, since a warm cache skips compilation and its memory peak
                (a run with a cache variant runs its configurations one after another)
Output: one JSON line per configuration and a summary with ratios against the peer.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "data" / "prepared" / "default" / "train.mindrecord"
PRESET = REPO / "configs" / "smollm2_135m_lora_cpu.yaml"
HF_NAMES = {"wq": "q_proj", "wk": "k_proj", "wv": "v_proj", "wo": "o_proj",
            "w1": "gate_proj", "w2": "down_proj", "w3": "up_proj"}  # MindFormers -> transformers


def bench_preset(rank: int | None = None, alpha: float | None = None,
                 dropout: float | None = None, targets: str | None = None):
    """The default preset's LoRA, with what is given overridden (both sides use the result),
    validated as any preset is (rank, dropout range, target names)."""
    import yaml
    from pipeline.model.presets import preset_from_dict
    raw = yaml.safe_load(PRESET.read_text(encoding="utf-8"))
    given = {"rank": rank, "alpha": alpha, "dropout": dropout, "targets": targets}
    raw["lora"] = {**raw["lora"], **{k: v for k, v in given.items() if v is not None}}
    return preset_from_dict(raw, name=PRESET.stem, src=PRESET)


def batches(batch: int, seq: int, steps: int, seed: int = 0):
    """(input_ids, labels) int32 [batch, seq + 1] x steps: real rows when prepared, else random."""
    rng = np.random.default_rng(seed)
    if DATA.is_file():
        from pipeline.data.mindrecord import read_mindrecord_arrays
        from pipeline.data.training_rows import fit_width
        ids, labels = read_mindrecord_arrays(DATA)
        ids, labels, _ = fit_width(ids, labels, seq)
        if len(ids) < batch * steps:
            raise SystemExit(f"{DATA}: {len(ids)} rows fit in --seq {seq}, {batch * steps} needed")
        pick = rng.permutation(len(ids))[:batch * steps]
        return [(ids[pick[i * batch:(i + 1) * batch]], labels[pick[i * batch:(i + 1) * batch]])
                for i in range(steps)]
    out = []
    for _ in range(steps):
        ids = rng.integers(3, 49152, size=(batch, seq + 1)).astype(np.int32)
        labels = ids.copy()
        labels[:, :seq // 2] = -100
        out.append((ids, labels))
    return out


def current_rss_gb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1024 ** 3


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024


# ---------------------------------------------------------------- ours
class MindSporeTrainer:
    """Our training step for one variant, built once; step(i) trains on data[i] and
    returns (seconds, loss). finish() analyses the profile when the variant has one."""

    def __init__(self, variant: str, data, preset, profile_from: int):
        import mindspore as ms
        from mindspore import nn
        from pipeline.model.build import build_model, setup_context
        from pipeline.train_step import HeadTrimLoss, head_budget, run_batch, step_cells

        self.opts = opts = set(variant.split("+"))
        self.variant, self.data, self.profile_from = variant, data, profile_from
        setup_context({"bench": variant, "shape": [len(data[0][0]), data[0][0].shape[1]]}
                      if "cache" in opts else None)
        if "o1" in opts:
            ms.set_context(memory_optimize_level="O1")
        batch, width = data[0][0].shape
        self.micro = next((int(o[5:]) for o in opts if o.startswith("micro")), batch)
        if self.micro < batch and "head_trim" not in opts:
            raise SystemExit("microN needs head_trim (its loss weights labels by the whole batch)")
        if "interop1" in opts:
            ms.set_context(inter_op_parallel_num=1)
        threads = next((int(o[7:]) for o in opts if o.startswith("threads")), None)
        if threads:
            ms.set_context(runtime_num_threads=threads)
        net = build_model(preset, for_training=True, seq_length=width - 1, batch_size=self.micro,
                          recompute="recompute" in opts, lora_scale_on_b="mindpet_lora" not in opts,
                          fused_layers="mf_layers" not in opts)
        self.k = max(head_budget(lab, self.micro) for _, lab in data)
        if "head_trim" in opts:
            net = HeadTrimLoss(net, self.k)
        opt = nn.AdamWeightDecay([p for p in net.trainable_params()], learning_rate=1e-4,
                                 beta1=0.9, beta2=0.95)
        self.grad_step, self.apply_step = step_cells(net, opt)  # the step train.py runs
        self.run_batch = run_batch
        self.profiler = self.profile_dir = None

    def step(self, i: int) -> tuple[float, float]:
        if i == self.profile_from and "profile" in self.opts:
            from mindspore import Profiler
            self.profile_dir = REPO / "artifacts" / "bench_profile" / self.variant.replace("+", "_")
            shutil.rmtree(self.profile_dir, ignore_errors=True)  # one profile per variant: the latest
            self.profiler = Profiler(output_path=str(self.profile_dir))
        ids, labels = self.data[i]
        t = time.perf_counter()
        loss = self.run_batch(self.grad_step, self.apply_step, ids, labels, self.micro,
                              self.k if "head_trim" in self.opts else None)
        return time.perf_counter() - t, loss

    def name(self) -> str:
        return f"mindformers:{self.variant}"

    def finish(self) -> dict:
        if not self.profiler:
            return {}
        self.profiler.analyse()
        return {"time_by_op_type": op_type_shares(next(self.profile_dir.rglob("cpu_op_type_info_*.csv"))),
                "profile_dir": str(self.profile_dir.relative_to(REPO))}  # per-op detail for a closer look


def run_mindspore(variant: str, data, warmup: int, preset) -> dict:
    return run_trainer(MindSporeTrainer(variant, data, preset, profile_from=warmup), data, warmup)


def run_trainer(trainer, data, warmup: int, steps=None, after_step=None) -> dict:
    """The trainer's steps (default: every step of `data` in a row; a --serve worker passes
    the ones its parent asks for), after_step(seconds, loss) after each; the summary with
    the steady RSS after compiling."""
    times, losses, rss = [], [], []
    for i in range(len(data)) if steps is None else steps:
        seconds, loss = trainer.step(i)
        times.append(seconds)
        losses.append(loss)
        rss.append(current_rss_gb())
        if after_step:
            after_step(seconds, loss)
    batch, width = data[0][0].shape
    out = _summary(trainer.name(), times, losses, batch, width - 1, warmup)
    out["rss_after_steps_gb"] = round(max(rss[1:] or rss), 2)  # steady state, compile excluded
    out.update(trainer.finish())
    return out


def op_type_shares(csv_path: Path, top: int = 8) -> dict[str, float]:
    """Share of kernel time per op type from MindSpore's CPU profile (op_type_info csv),
    the largest `top` and "other"; forward and backward kernels of a type are summed."""
    import csv
    totals: dict[str, float] = {}
    with open(csv_path, newline="") as fh:
        for row in csv.DictReader(fh):
            kind = row["op_type"].removesuffix("Grad")  # DropoutGrad counts as Dropout
            totals[kind] = totals.get(kind, 0.0) + float(row["total_compute_time"])
    whole = sum(totals.values()) or 1.0
    ranked = sorted(totals.items(), key=lambda kv: -kv[1])
    shares = {name: round(100 * t / whole, 1) for name, t in ranked[:top]}
    shares["other"] = round(100 * sum(t for _, t in ranked[top:]) / whole, 1)
    return shares


# ---------------------------------------------------------------- peer
class TorchTrainer:
    """PyTorch + PEFT on the same model, LoRA and batches; step(i) like MindSporeTrainer's."""

    def __init__(self, data, preset, micro: int):
        import torch
        from peft import LoraConfig, get_peft_model
        from transformers import AutoModelForCausalLM
        from pipeline.model.tokenizer import smollm2_gguf_path

        torch.manual_seed(0)
        gguf = smollm2_gguf_path()
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name,
                                                     torch_dtype=torch.float32)
        lora = preset.lora
        model = get_peft_model(model, LoraConfig(r=lora.rank, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                                                 target_modules=[HF_NAMES[t] for t in lora.targets]))
        model.train()
        self.torch, self.model, self.data, self.micro = torch, model, data, micro
        self.opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4,
                                     betas=(0.9, 0.95), weight_decay=0.0)

    def step(self, i: int) -> tuple[float, float]:
        torch, micro = self.torch, self.micro
        ids, labels = self.data[i]
        x = torch.from_numpy(ids[:, :-1].astype(np.int64))
        y = torch.from_numpy(labels[:, 1:].astype(np.int64))
        t = time.perf_counter()
        # Gradient accumulation over passes of `micro` rows, each label weighing 1 / the whole
        # batch's labels: the update train.micro_batch makes on our side, at the same memory.
        labelled = int((y != -100).sum())
        loss_sum = 0.0
        for at in range(0, x.shape[0], micro):
            # No attention_mask: rows are right-padded, so causal attention already keeps pads
            # out of every labelled position (same loss as MindFormers' pad-key mask, see
            # "losses"), and it lets PyTorch take its fast causal SDPA path.
            logits = self.model(input_ids=x[at:at + micro]).logits
            loss = torch.nn.functional.cross_entropy(
                logits.reshape(-1, logits.shape[-1]), y[at:at + micro].reshape(-1),
                ignore_index=-100, reduction="sum") / labelled
            loss.backward()
            loss_sum += float(loss)
        self.opt.step()
        self.opt.zero_grad()
        return time.perf_counter() - t, loss_sum

    def name(self) -> str:
        return "torch+peft" if self.micro >= self.data[0][0].shape[0] else f"torch+peft:micro{self.micro}"

    def finish(self) -> dict:
        return {"torch_threads": self.torch.get_num_threads()}


def run_torch(data, warmup: int, preset, micro: int) -> dict:
    return run_trainer(TorchTrainer(data, preset, micro), data, warmup)


def _summary(name, times, losses, batch, seq, warmup) -> dict:
    timed = times[warmup:]
    step = float(np.median(timed))
    return {"name": name, "batch": batch, "seq": seq, "steps_timed": len(timed),
            "first_step_s": round(times[0], 1), "step_s": round(step, 3),
            "step_times_s": [round(t, 3) for t in timed],
            "tokens_per_s": round(batch * seq / step, 1), "peak_rss_gb": round(peak_rss_gb(), 2),
            "losses": [round(l, 4) for l in losses]}


# ---------------------------------------------------------------- driver
def make_trainer(args, data, preset):
    if args.worker == "torch":
        return TorchTrainer(data, preset, args.peer_micro)
    return MindSporeTrainer(args.worker.split(":", 1)[1], data, preset, profile_from=args.warmup)


def asked_steps(lines):
    """The step numbers of "STEP i" lines, until "END"."""
    for line in lines:
        if line.startswith("STEP "):
            yield int(line.split()[1])
        elif line.startswith("END"):
            return


def worker(args) -> None:
    """One configuration in this process. Alone: every step in a row, then RESULT. With
    --serve: steps on command from the parent (run_interleaved), one line each way:
    "STEP i" -> "DONE seconds loss", "END" -> "RESULT {...}"."""
    data = batches(args.batch, args.seq, args.steps + args.warmup)
    preset = bench_preset(args.lora_rank, args.lora_alpha, args.lora_dropout, args.lora_targets)
    trainer = make_trainer(args, data, preset)
    if not args.serve:
        result = run_trainer(trainer, data, args.warmup)
    else:
        print("READY", flush=True)
        result = run_trainer(trainer, data, args.warmup, steps=asked_steps(sys.stdin),
                             after_step=lambda seconds, loss: print(f"DONE {seconds} {loss}", flush=True))
    result["lora"] = {"rank": preset.lora.rank, "alpha": preset.lora.alpha,
                      "dropout": preset.lora.dropout, "targets": list(preset.lora.targets)}
    print("RESULT " + json.dumps(result), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    train = bench_preset().train
    micro = train.micro_batch or train.batch_size
    preset_variant = f"head_trim+micro{micro}"    # the default preset's settings
    ap.add_argument("--variants", default=preset_variant,
                    help=f"comma list of our configurations (default {preset_variant}: the default preset)")
    ap.add_argument("--no-peer", action="store_true")
    ap.add_argument("--batch", type=int, default=train.batch_size, help="default: the preset's")
    ap.add_argument("--seq", type=int, default=train.seq_length, help="default: the preset's")
    ap.add_argument("--peer-micro", type=int, default=micro,
                    help="rows per PyTorch pass, gradients accumulated over the batch (default: "
                         "the preset's micro_batch, so both sides hold the same activations)")
    ap.add_argument("--runs", type=int, default=1,
                    help="repeat the whole comparison; the summary gives each ratio's spread")
    ap.add_argument("--steps", type=int, default=4, help="timed steps")
    ap.add_argument("--warmup", type=int, default=2, help="untimed first steps (compile)")
    # LoRA for both sides; each defaults to the embedded preset's
    ap.add_argument("--lora-rank", type=int)
    ap.add_argument("--lora-alpha", type=float)
    ap.add_argument("--lora-dropout", type=float)
    ap.add_argument("--lora-targets", help="e.g. wq,wv (the contest baseline's)")
    ap.add_argument("--sequential", action="store_true",
                    help="run each configuration's steps alone, one after another (each holds "
                         "memory only while it runs), instead of taking turns step by step")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--out", help="also write the results as JSON here")
    args = ap.parse_args()
    if args.worker:
        return worker(args)
    jobs = [] if args.no_peer else ["torch"]
    for v in (v for v in args.variants.split(",") if v):
        jobs += [f"ms:{v}"] * (2 if has_option(f"ms:{v}", "cache") else 1)  # cold, then warm
    results = []
    took_turns = not one_after_another(jobs, args.sequential)   # steps pair up only then
    for run in range(args.runs):
        batch = run_jobs(jobs, args)
        peer = next((r for r in batch if r["name"].startswith("torch+peft")), None)
        for r in batch:
            r["run"] = run
            if peer:   # ratios only within one run: this host drifts 10-15% between runs
                r["speed_ratio_vs_peer"] = round(r["tokens_per_s"] / peer["tokens_per_s"], 3)
                r["memory_ratio_vs_peer"] = round(r["peak_rss_gb"] / peer["peak_rss_gb"], 3)
                if r is not peer and took_turns:
                    r["paired_speed_ratio_vs_peer"] = paired_ratio(peer["step_times_s"], r["step_times_s"])
        results += batch
    for r in results:
        if "time_by_op_type" in r:
            print(f"{r['name']} kernel time by op type (%): {r['time_by_op_type']}")
    print("\n| run | configuration | first step s | step s | tokens/s | peak RSS GB | steady RSS GB "
          "| speed vs peer | paired speed vs peer | memory vs peer |")
    print("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in results:
        print(f"| {r['run'] + 1} | {r['name']} | {r['first_step_s']} | {r['step_s']} | {r['tokens_per_s']} | "
              f"{r['peak_rss_gb']} | {r['rss_after_steps_gb']} | {r.get('speed_ratio_vs_peer', '-')} | "
              f"{r.get('paired_speed_ratio_vs_peer', '-')} | {r.get('memory_ratio_vs_peer', '-')} |")
    spreads = {key: ratio_spread(results, key) for key in ("speed_ratio_vs_peer", "paired_speed_ratio_vs_peer")}
    for key, spread in spreads.items():
        for name, (low, mid, high) in spread.items():
            print(f"{name}: {key} {mid} (min {low}, max {high}) over {args.runs} run(s)")
    if args.out:
        Path(args.out).write_text(json.dumps({"results": results, **{
            key.replace("_vs_peer", "_spread"): {name: dict(zip(("min", "median", "max"), v))
                                                 for name, v in spread.items()}
            for key, spread in spreads.items()}}, indent=2))


def paired_ratio(peer_times: list[float], our_times: list[float]) -> float:
    """Median over the timed steps of peer step i / our step i. Taking turns, step i of each
    side ran back to back, so each pair met the same host; the ratio of the two medians mixes
    steps from the host's quiet and slow spells in different proportions on the two sides
    (measured: ours at 3.3 or 4.0-4.4 s a step, the peer at 3.8-4.2 or 5.0-5.5 within one run)."""
    if len(peer_times) != len(our_times) or not our_times:
        raise ValueError(f"{len(peer_times)} peer steps against {len(our_times)} of ours")
    return round(float(np.median(np.array(peer_times) / np.array(our_times))), 3)


def ratio_spread(results: list[dict], key: str = "speed_ratio_vs_peer") -> dict[str, tuple[float, float, float]]:
    """{configuration: (min, median, max) of `key` (a ratio vs the peer)} over the runs."""
    by_name: dict[str, list[float]] = {}
    for r in results:
        if key in r and not r["name"].startswith("torch+peft"):
            by_name.setdefault(r["name"], []).append(r[key])
    return {name: (min(v), round(float(np.median(v)), 3), max(v)) for name, v in by_name.items()}


def run_jobs(jobs: list[str], args) -> list[dict]:
    """Each job in its own subprocess (its peak RSS is its own) with a private compile cache
    (so "cold" is really cold); never two steps at once on the machine. Interleaved (the
    default): every worker is loaded and compiled one after another, then they take turns
    one step each; else each runs all its steps alone, one job after another."""
    import tempfile
    from pipeline.model.tokenizer import cache_dir
    cache = Path(tempfile.mkdtemp(prefix="bench_cache_"))
    try:
        (cache / "smollm2-135m").symlink_to(cache_dir() / "smollm2-135m")
        if one_after_another(jobs, args.sequential):
            return [r for r in (run_alone(job, args, cache) for job in jobs) if r]
        return run_interleaved(jobs, args, cache)
    finally:
        shutil.rmtree(cache, ignore_errors=True)  # the symlinked weights are not followed


def one_after_another(jobs: list[str], sequential: bool) -> bool:
    """Asked for, or needed: a `cache` variant's warm run must start after the cold one has
    finished and left its cache behind."""
    return sequential or any(has_option(job, "cache") for job in jobs)


def has_option(job: str, option: str) -> bool:
    """Whether a job ("torch" or "ms:<variant>") has `option` among its variant's '+' parts."""
    return option in job.split(":")[-1].split("+")


def worker_command(job: str, args, cache: Path, serve: bool) -> tuple[list[str], dict]:
    cmd = [sys.executable, __file__, "--worker", job, "--batch", str(args.batch), "--seq",
           str(args.seq), "--steps", str(args.steps), "--warmup", str(args.warmup),
           "--peer-micro", str(args.peer_micro)] + (["--serve"] if serve else [])
    for flag in ("lora_rank", "lora_alpha", "lora_dropout", "lora_targets"):
        if getattr(args, flag) is not None:
            cmd += ["--" + flag.replace("_", "-"), str(getattr(args, flag))]
    env = {**os.environ, "GLOG_v": "3", "PIPELINE_CACHE": str(cache)}
    if not has_option(job, "cache"):
        env["PIPELINE_NO_COMPILE_CACHE"] = "1"
    return cmd, env


def run_alone(job: str, args, cache: Path) -> dict | None:
    cmd, env = worker_command(job, args, cache, serve=False)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    line = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")]
    if not line:
        print(f"{job} failed:\n{proc.stderr[-3000:]}", file=sys.stderr)
        return None
    print(line[-1][7:], flush=True)
    return json.loads(line[-1][7:])


class Worker:
    """A configuration's subprocess in --serve mode, driven one line at a time."""

    def __init__(self, job: str, args, cache: Path):
        import tempfile
        cmd, env = worker_command(job, args, cache, serve=True)
        self.job, self.stderr = job, tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.stderr, text=True, env=env)

    def expect(self, prefix: str) -> str:
        """The worker's next line starting with `prefix` (libraries may print other lines)."""
        for line in self.proc.stdout:
            if line.startswith(prefix):
                return line[len(prefix):].strip()
        self.stderr.seek(0)
        raise RuntimeError(f"{self.job} stopped before {prefix.strip()}:\n{self.stderr.read()[-3000:]}")

    def step(self, i: int) -> None:
        self.proc.stdin.write(f"STEP {i}\n")
        self.proc.stdin.flush()
        self.expect("DONE ")

    def end(self) -> dict:
        self.proc.stdin.write("END\n")
        self.proc.stdin.flush()
        result = json.loads(self.expect("RESULT "))
        self.proc.wait()
        return result


def turn_order(workers: list, step: int) -> list:
    """Who goes first moves on by one every step, so no configuration always follows the
    same one (a worker that has just run leaves the caches warm for itself, not the next)."""
    shift = step % len(workers)
    return workers[shift:] + workers[:shift]


def run_interleaved(jobs: list[str], args, cache: Path) -> list[dict]:
    """Why take turns: this host's speed moves by 10-20% for tens of seconds at a time
    (measured: a NumPy matmul loop, and one configuration's steps jumping between 3.4 and
    4.1 s within a run), so configurations run minutes apart meet different machines.
    One step each in turn, in an order rotated every round, they meet the same one.
    Loading and compiling (the warm-up steps) still happen one worker at a time."""
    workers = []
    try:
        for job in jobs:
            w = Worker(job, args, cache)
            w.expect("READY")
            for i in range(args.warmup):
                w.step(i)
            workers.append(w)
        for i in range(args.warmup, args.warmup + args.steps):
            for w in turn_order(workers, i):
                w.step(i)
        results = []
        for w in workers:
            results.append(w.end())
            print(json.dumps(results[-1]), flush=True)
        return results
    finally:
        for w in workers:
            if w.proc.poll() is None:
                w.proc.kill()


if __name__ == "__main__":
    main()
