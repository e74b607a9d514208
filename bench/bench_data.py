"""Benchmark the data stage: generation of the contest-size file and prepare -> MindRecord.

    nice -n 10 python bench/bench_data.py                 # 800k generate, 100k prepare
    python bench/bench_data.py --generate 100000 --prepare 20000 --json out.json

Each figure is reported with a peer measured in the same run:
- generate: rows/s writing N rows, against parsing the same file back with json.loads
  (the cost of merely reading the data once);
- prepare: rows/s for a whole recipe run (generate, dedup, split, rewrite, prompt, tokenise,
  write JSONL + MindRecord), against tokenising the same prompts and answers alone.
Outputs go to a temporary folder that is removed afterwards.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path


from pipeline.data.generate import write_generated
from pipeline.data.mindrecord import encode_texts
from pipeline.data.prepare import prepare
from pipeline.data.prompts import answer_separator, build_prompt
from pipeline.data.recipes import recipe_from_dict
from pipeline.model.tokenizer import load_tokenizer


def bench_generate(n: int, folder: Path) -> dict:
    path = folder / "train.json"
    start = time.perf_counter()
    write_generated(path, n, seed=0, progress=False)
    gen_s = time.perf_counter() - start
    start = time.perf_counter()
    with path.open(encoding="utf-8") as handle:
        rows = sum(1 for line in handle if json.loads(line))
    parse_s = time.perf_counter() - start
    assert rows == n
    return {"rows": n, "seconds": round(gen_s, 2), "rows_per_s": round(n / gen_s),
            "peer_parse_seconds": round(parse_s, 2), "ratio_to_parse": round(gen_s / parse_s, 2),
            "file_mb": round(path.stat().st_size / 1e6, 1)}


def bench_prepare(n: int, folder: Path) -> dict:
    tok = load_tokenizer()
    recipe = recipe_from_dict({
        "name": "bench", "source": {"generate": n, "seed": 1}, "dedup": True,
        "split": {"validation": 0.01},
        "answers": {"round": 2, "working": {"add": "signs", "sub": "signs"}},
        "prompt": {"template": "minimal"},
        "output": {"formats": ["jsonl", "mindrecord"], "seq_length": 256}}, "bench")
    start = time.perf_counter()
    manifest = prepare(recipe, tokenizer=tok, out_dir=folder / "prepared", progress=False)
    prep_s = time.perf_counter() - start
    train = [json.loads(line) for line in (folder / "prepared" / "train.jsonl").open(encoding="utf-8")]
    prompts = [build_prompt(r["problem"], "minimal") for r in train]
    answers = [answer_separator(p) + r["target"] for p, r in zip(prompts, train)]
    start = time.perf_counter()
    encode_texts(tok, prompts)
    encode_texts(tok, answers)
    tok_s = time.perf_counter() - start
    written = manifest["files"]["train.mindrecord"]["rows"] + manifest["files"].get(
        "validation.mindrecord", {}).get("rows", 0)
    return {"rows": n, "records_written": written, "seconds": round(prep_s, 2),
            "rows_per_s": round(n / prep_s), "peer_tokenise_only_seconds": round(tok_s, 2),
            "ratio_to_tokenise_only": round(prep_s / tok_s, 2),
            "overlong": {k: v["count"] for k, v in manifest["overlong"].items()}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generate", type=int, default=800_000, help="rows to generate (default 800k)")
    parser.add_argument("--prepare", type=int, default=100_000, help="rows to prepare (default 100k)")
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_data_") as tmp:
        folder = Path(tmp)
        results = {"generate": bench_generate(args.generate, folder)}
        g = results["generate"]
        print(f"generate {g['rows']:,} rows: {g['seconds']} s ({g['rows_per_s']:,} rows/s, "
              f"{g['file_mb']} MB); parsing it back: {g['peer_parse_seconds']} s "
              f"(generate/parse = {g['ratio_to_parse']}x)", flush=True)
        results["prepare"] = bench_prepare(args.prepare, folder)
        p = results["prepare"]
        print(f"prepare {p['rows']:,} rows -> {p['records_written']:,} MindRecord rows: {p['seconds']} s "
              f"({p['rows_per_s']:,} rows/s); tokenising alone: {p['peer_tokenise_only_seconds']} s "
              f"(prepare/tokenise = {p['ratio_to_tokenise_only']}x); overlong {p['overlong']}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
