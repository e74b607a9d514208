"""bench/bench_train.py's peer: gradient accumulation over micro-batches makes the update the
whole batch makes (same loss, same adapter after the step), so a micro-batched peer is the
like-for-like comparison for our train.micro_batch. Real PyTorch + PEFT on SmolLM2."""
import importlib.util
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("peft")

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("bench_train", REPO / "bench" / "bench_train.py")
bench_train = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_train)


def test_micro_batched_peer_makes_the_whole_batch_update():
    preset = bench_train.bench_preset()
    rng = np.random.default_rng(3)
    ids = rng.integers(3, 49152, size=(4, 13)).astype(np.int32)
    labels = ids.copy()
    labels[:, :6] = -100
    labels[0, 6:9] = -100            # rows carry different label counts: weights must be global
    data = [(ids, labels), (ids[::-1].copy(), labels[::-1].copy())]
    whole = bench_train.run_torch(data, 0, preset, micro=4)
    micro = bench_train.run_torch(data, 0, preset, micro=2)
    assert whole["name"] == "torch+peft" and micro["name"] == "torch+peft:micro2"
    # step 1: same loss before any update; step 2: same loss after the first update
    np.testing.assert_allclose(micro["losses"], whole["losses"], rtol=2e-4)


def test_interleaved_workers_take_turns_on_the_same_batches():
    """run_interleaved drives real worker subprocesses (here two copies of the peer, the
    cheaper side) one step each in turn: each reports every timed step, and both trained
    on the same batches in the same order, so their losses agree."""
    import argparse
    import tempfile
    args = argparse.Namespace(batch=2, seq=98, steps=2, warmup=1, peer_micro=1, lora_rank=None,
                              lora_alpha=None, lora_dropout=None, lora_targets=None)
    with tempfile.TemporaryDirectory() as cache:
        from pipeline.model.tokenizer import cache_dir
        (Path(cache) / "smollm2-135m").symlink_to(cache_dir() / "smollm2-135m")
        results = bench_train.run_interleaved(["torch", "torch"], args, Path(cache))
    assert [r["name"] for r in results] == ["torch+peft:micro1"] * 2
    for r in results:
        assert len(r["step_times_s"]) == 2 and len(r["losses"]) == 3
        assert r["peak_rss_gb"] > 0.3          # each worker's own process: the model is in it
    np.testing.assert_allclose(results[0]["losses"], results[1]["losses"], rtol=1e-5)
