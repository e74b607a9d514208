"""Benchmark: greedy decoding tokens/s, ours (MindSpore, KV cache) vs transformers' generate().

    python bench/bench_decode.py            # batch 1, 8, 16, 32; 64-token prompts, 32 new tokens
    python bench/bench_decode.py --quick    # 16 new tokens, best of 5 timed passes a side
    python bench/bench_decode.py --quick --kernel mindspore   # ours on MindSpore's MatMul
    python bench/bench_decode.py --batch-sizes 1 4 8 16 --new-tokens 64
    python bench/bench_decode.py --quick --json    # machine-readable, with squad_peak_rss_gb

Same SmolLM2-135M GGUF on both sides (ours from the converted MindFormers weights, the peer
through transformers' GGUF loader, float32, its own KV cache), same prompt token ids (left
padded), same machine, one process; for each batch size the two take turns pass by pass (a
slow spell of this shared host then falls on both). Both generate exactly
--new-tokens tokens per row (end-of-sequence suppressed), so tokens/s compare like for like.
The first call of each shape is an untimed warm-up (our graph compile, the peer's first-call
overhead); `warmup_s` is that first call, so ours is the compile of a fresh shape. Also reports
whether the two agree token for token at batch 1.

Where the time goes: `prefill_ms` (the whole prompt, once) and `step_ms` (one new token for
every row, the median of PHASE_STEPS steps after the prompt) for each side, timed apart from
generate(). At batch 1 a step reads every fp32 weight once (0.54 GB), so both sides are bound
by memory bandwidth there; these say whether a gap is in the prompt or in the steps.

Ours runs its weight matmuls on pipeline.kernels' packed kernel where g++ builds it (the
decoder's default; `ours_kernel` in the report says which ran); `--kernel mindspore` runs the
same decoder on MindSpore's MatMul, to see what the kernel is worth.

Memory: `squad_peak_rss_gb` is the peak RSS of a fresh process that does what `infer` does for
SQuAD at batch 8 (weights loaded and folded, one batch of prompts as long as the longest
prompt of the main job's 300-item SQuAD subset, 842 tokens as in its 100-item subset before,
20 new tokens), read from the
kernel's VmHWM. The peer's peak RSS for the same work is `squad_peak_rss_gb_peer`.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from pipeline.model.tokenizer import PAD_ID, load_tokenizer, smollm2_gguf_path

PRESET = Path(__file__).resolve().parent.parent / "configs" / "smollm2_135m_lora_cpu.yaml"
PROBLEMS = ["计算 4204.22 + -2369.17 等于多少？", "计算 5073.46 / -1586.04 等于多少？",
            "当 x = 4.03 时，求函数 y = 57x^54 的值", "解方程 -37x + 12 = 0",
            "求以下数据的平均值：[12, 55, 3, 97, 41]", "计算 812.50 的 3 次方？",
            "一个长方形的长为 37 厘米，宽为 12 厘米，请计算其面积。", "计算 -93.07 * 4417.61 等于多少？"]


def make_prompts(n: int, length: int) -> list[list[int]]:
    """n token-id prompts of exactly `length` tokens: math problems, cut or repeated."""
    tok = load_tokenizer()
    out = []
    for i in range(n):
        text = "\n\n".join(PROBLEMS[(i + j) % len(PROBLEMS)] for j in range(8)) + "\n\n### Response:"
        ids = tok.encode(text, add_special_tokens=False).ids
        while len(ids) < length:
            ids = ids + ids
        out.append(ids[-length:])
    return out


PHASE_STEPS = 8


def _median_ms(seconds: list[float]) -> float:
    return sorted(seconds)[len(seconds) // 2] * 1e3


def our_phases(decoder, batch, new_tokens) -> dict:
    """prefill_ms and step_ms of our decoder for `batch` (graphs already compiled)."""
    from pipeline.decode import _round_up
    width = _round_up(max(len(p) for p in batch), decoder.bucket)
    tokens, positions, visible = decoder._left_pad(batch, width, new_tokens)
    began = time.perf_counter()
    decoder._prefill(tokens, positions, visible)
    prefill = time.perf_counter() - began
    steps = []
    for step in range(min(PHASE_STEPS, new_tokens)):   # the prompt's last token again: same work
        visible[:, width + step] = True
        began = time.perf_counter()
        decoder.logits_step(tokens[:, -1:], positions[:, -1:] + 1 + step, width + step, visible)
        steps.append(time.perf_counter() - began)
    return {"prefill_ms": prefill * 1e3, "step_ms": _median_ms(steps)}


def peer_phases(model, ids) -> dict:
    """prefill_ms and step_ms of transformers' forward with its KV cache for `ids`."""
    import torch
    with torch.inference_mode():
        began = time.perf_counter()
        out = model(ids, attention_mask=torch.ones_like(ids), use_cache=True)
        prefill = time.perf_counter() - began
        past, nxt, steps = out.past_key_values, ids[:, -1:], []
        for step in range(PHASE_STEPS):
            began = time.perf_counter()
            past = model(nxt, past_key_values=past, use_cache=True).past_key_values
            steps.append(time.perf_counter() - began)
    return {"prefill_ms": prefill * 1e3, "step_ms": _median_ms(steps)}


class OurSide:
    """Our decoder, one GreedyDecoder per batch size (its graphs compiled by the first call)."""
    name = "ours"

    def __init__(self, kernel=None):
        from pipeline.model.build import model_weights, setup_context
        from pipeline.model.presets import load_preset
        setup_context()
        self.weights, self.dims = model_weights(load_preset(PRESET))
        self.kernel = kernel

    def prepare(self, batch, new_tokens) -> "OurRunner":
        from pipeline.decode import GreedyDecoder
        decoder = GreedyDecoder(self.weights, self.dims, batch_size=len(batch),
                                max_len=len(batch[0]) + new_tokens, kernel=self.kernel)
        return OurRunner(decoder, batch, new_tokens)


class OurRunner:
    def __init__(self, decoder, batch, new_tokens):
        self.decoder, self.batch, self.new_tokens = decoder, batch, new_tokens
        self.extra = {"kernel": decoder.kernel}

    def generate(self) -> list[int]:
        gens = self.decoder.generate(self.batch, self.new_tokens, min_new_tokens=self.new_tokens)
        return gens[0].tokens

    def phases(self) -> dict:
        return our_phases(self.decoder, self.batch, self.new_tokens)


class PeerSide:
    """transformers' generate() on the same GGUF, float32, its own KV cache."""
    name = "transformers"

    def __init__(self):
        import torch
        from transformers import AutoModelForCausalLM
        gguf = smollm2_gguf_path()
        self.model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name,
                                                          dtype=torch.float32)
        self.model.eval()

    def prepare(self, batch, new_tokens) -> "PeerRunner":
        return PeerRunner(self.model, batch, new_tokens)


class PeerRunner:
    def __init__(self, model, batch, new_tokens):
        import torch
        self.model, self.ids = model, torch.tensor(batch)    # equal lengths: no padding needed
        self.kwargs = dict(attention_mask=torch.ones_like(self.ids), do_sample=False,
                           max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                           pad_token_id=PAD_ID, use_cache=True)
        self.extra = {"threads": torch.get_num_threads()}

    def generate(self) -> list[int]:
        import torch
        with torch.inference_mode():
            out = self.model.generate(self.ids, **self.kwargs)
        return out[0, self.ids.shape[1]:].tolist()

    def phases(self) -> dict:
        return peer_phases(self.model, self.ids)


def take_turns(sides, prompts, batch_sizes, new_tokens, repeats, clock=time.perf_counter):
    """For each batch size: every side's first call (our compile, the peer's first-call
    overhead) as `warmup_s`, then `repeats` timed passes, the sides taking turns pass by
    pass, so a slow spell of this shared host falls on both rather than on whichever ran in
    it (they ran minutes apart before: one run's ratio at batch 8 fell to 1.19 where the next
    gave 1.51); each side's best pass counts. Returns ({side: {bs: result}}, {side: batch-1
    tokens})."""
    results = {side.name: {} for side in sides}
    first_rows = {}
    for bs in batch_sizes:
        batch = prompts[:bs]
        runners, best, warm, rows = {}, {}, {}, {}
        for side in sides:
            runners[side.name] = runner = side.prepare(batch, new_tokens)
            began = clock()
            rows[side.name] = runner.generate()
            warm[side.name] = clock() - began
        for _ in range(repeats):
            for name, runner in runners.items():
                began = clock()
                rows[name] = runner.generate()
                elapsed = clock() - began
                best[name] = min(best.get(name, elapsed), elapsed)
        for name, runner in runners.items():
            results[name][bs] = {"tok_s": bs * new_tokens / best[name], "seconds": best[name],
                                 "warmup_s": warm[name], **runner.extra, **runner.phases()}
            if bs == 1:
                first_rows[name] = rows[name]
        del runners    # our decoder's graphs and caches go before the next batch size's
    return results, first_rows


SQUAD_BATCH, SQUAD_NEW_TOKENS = 8, 20   # what the main job's SQuAD stage runs


def _main_job_squad_items() -> int:
    from pipeline.commands.main_job import VARIANTS
    return VARIANTS["full"]["squad_n"]


def longest_squad_prompt() -> list[int]:
    """Token ids of the longest prompt in the main job's SQuAD subset."""
    from pipeline.data.squad import squad_subset
    tok = load_tokenizer()
    return max((tok.encode(item["prompt"], add_special_tokens=False).ids
                for item in squad_subset(_main_job_squad_items())), key=len)


def squad_memory_worker(side: str) -> None:
    """In a fresh process: one SQuAD-length batch, then print the process's peak RSS (GB)."""
    prompt = longest_squad_prompt()
    batch = [prompt] * SQUAD_BATCH
    if side == "ours":
        from pipeline.infer import BUCKET, _load_decoder, cache_length
        from pipeline.model.presets import load_preset
        bucket = BUCKET["squad"]
        decoder = _load_decoder(load_preset(PRESET), None, SQUAD_BATCH, bucket,
                                max_len=cache_length(len(prompt), bucket, SQUAD_NEW_TOKENS))
        decoder.generate(batch, SQUAD_NEW_TOKENS, min_new_tokens=1)
    else:
        import torch
        from transformers import AutoModelForCausalLM
        gguf = smollm2_gguf_path()
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name,
                                                     dtype=torch.float32).eval()
        with torch.inference_mode():
            model.generate(torch.tensor(batch), attention_mask=torch.ones(len(batch), len(prompt), dtype=torch.long),
                           do_sample=False, max_new_tokens=SQUAD_NEW_TOKENS, min_new_tokens=1,
                           pad_token_id=PAD_ID, use_cache=True)
    print(f"PEAK_RSS_GB {peak_rss_gb():.3f}")


def peak_rss_gb() -> float:
    """This process's peak resident memory: VmHWM, which starts afresh at exec (ru_maxrss
    would carry over the parent's peak to a child)."""
    with open("/proc/self/status") as fh:
        kb = next(int(line.split()[1]) for line in fh if line.startswith("VmHWM:"))
    return kb / 1024 ** 2


def squad_peak_rss_gb(side: str) -> float | None:
    proc = subprocess.run([sys.executable, __file__, "--memory-worker", side],
                          capture_output=True, text=True)
    line = [l for l in proc.stdout.splitlines() if l.startswith("PEAK_RSS_GB ")]
    if not line:
        print(f"memory worker ({side}) failed:\n{proc.stderr[-2000:]}", file=sys.stderr)
        return None
    return float(line[-1].split()[1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="16 new tokens, best of 5 timed passes")
    parser.add_argument("--kernel", choices=["auto", "packed", "mindspore"], default="auto",
                        help="our matmuls: the packed kernel where it builds (auto), insist on it, "
                             "or MindSpore's MatMul")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8, 16, 32])
    parser.add_argument("--prompt-tokens", type=int, default=64)
    parser.add_argument("--new-tokens", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--skip-peer", action="store_true", help="only our decoder")
    parser.add_argument("--skip-memory", action="store_true", help="no SQuAD-length RSS runs")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--memory-worker", choices=["ours", "peer"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_worker:
        squad_memory_worker(args.memory_worker)
        return 0
    new_tokens = args.new_tokens or (16 if args.quick else 32)
    # best of several passes a side, taken in turns: this host drifts, and a --quick pass is
    # about a second at batch 1 (best of 3 gave 1.18-1.44 there in five runs on 2026-12-05)
    repeats = args.repeats or (5 if args.quick else 2)
    prompts = make_prompts(max(args.batch_sizes), args.prompt_tokens)

    kernel = {"auto": None, "packed": True, "mindspore": False}[args.kernel]
    if args.kernel == "mindspore":   # the memory worker's decoder too
        from pipeline.kernels import ENV
        os.environ[ENV] = "mindspore"
    sides = [OurSide(kernel)] + ([] if args.skip_peer else [PeerSide()])
    results, rows = take_turns(sides, prompts, args.batch_sizes, new_tokens, repeats)
    ours, peer = results["ours"], results.get("transformers", {})
    ours_row, peer_row = rows.get("ours"), rows.get("transformers")
    report = {"prompt_tokens": args.prompt_tokens, "new_tokens": new_tokens, "repeats": repeats,
              "ours_kernel": next(iter(ours.values()))["kernel"],
              "ours": ours, "transformers": peer,
              "ratio": {bs: ours[bs]["tok_s"] / peer[bs]["tok_s"] for bs in peer},
              "same_tokens_batch1": None if peer_row is None or ours_row is None
              else ours_row == peer_row}
    if not args.skip_memory:   # after the speed runs: never two measurements at once
        report["squad_peak_rss_gb"] = squad_peak_rss_gb("ours")
        if not args.skip_peer:
            report["squad_peak_rss_gb_peer"] = squad_peak_rss_gb("peer")
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"greedy decoding, {args.prompt_tokens}-token prompts, {new_tokens} new tokens "
          f"(best of {repeats}); our matmuls: {report['ours_kernel']}")
    print(f"{'batch':>5}  {'ours tok/s':>10}  {'transformers':>12}  {'ratio':>6}  {'our warm-up s':>13}"
          f"  {'step ms ours/peer':>17}  {'prefill ms ours/peer':>20}")
    for bs in args.batch_sizes:
        mine, p = ours[bs], peer.get(bs)
        theirs = "-" if p is None else f"{p['tok_s']:.1f}"
        ratio = "-" if p is None else f"{mine['tok_s'] / p['tok_s']:.2f}"
        step = f"{mine['step_ms']:.1f}/" + ("-" if p is None else f"{p['step_ms']:.1f}")
        prefill = f"{mine['prefill_ms']:.0f}/" + ("-" if p is None else f"{p['prefill_ms']:.0f}")
        print(f"{bs:>5}  {mine['tok_s']:>10.1f}  {theirs:>12}  {ratio:>6}  {mine['warmup_s']:>13.1f}"
              f"  {step:>17}  {prefill:>20}")
    if report["same_tokens_batch1"] is not None:
        print(f"batch-1 tokens identical to transformers: {report['same_tokens_batch1']}")
    if "squad_peak_rss_gb" in report:
        print(f"peak RSS, one SQuAD batch of {SQUAD_BATCH} x the subset's longest prompt: ours "
              f"{report['squad_peak_rss_gb']} GB, transformers {report.get('squad_peak_rss_gb_peer', '-')} GB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
