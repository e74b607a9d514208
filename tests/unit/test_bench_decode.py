"""bench/bench_decode.py's own logic: the two sides take turns pass by pass and each keeps
its best pass (the benchmark itself runs outside the test suite). The sides here are
stand-ins that record the order of calls; the real ones are MindSpore and transformers."""
import importlib.util
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("bench_decode", REPO / "bench" / "bench_decode.py")
bench_decode = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_decode)


class Clock:
    """Time moves only when a runner generates: each call lasts the runner's next duration."""
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


class Side:
    def __init__(self, name, durations, log, clock):
        self.name, self.durations, self.log, self.clock = name, list(durations), log, clock

    def prepare(self, batch, new_tokens):
        side = self

        class Runner:
            extra = {"who": side.name}

            def generate(self):
                side.log.append((side.name, len(batch)))
                side.clock.now += side.durations.pop(0)
                return [len(batch), new_tokens]

            def phases(self):
                return {"prefill_ms": 1.0, "step_ms": 2.0}
        return Runner()


def test_sides_take_turns_and_keep_their_best_pass():
    log, clock = [], Clock()
    # per batch size: a warm-up, then 3 timed passes; the peer hits a slow pass in its second
    ours = Side("ours", [9.0, 2.0, 1.0, 4.0, 5.0, 0.5, 0.5, 0.5], log, clock)
    peer = Side("transformers", [1.0, 2.0, 8.0, 3.0, 1.0, 1.0, 2.0, 1.0], log, clock)
    results, rows = bench_decode.take_turns([ours, peer], [[1] * 4] * 8, [1, 8], 16, 3, clock=clock)
    # warm-ups first (ours, then the peer), then the timed passes alternate
    assert log[:8] == [("ours", 1), ("transformers", 1)] + [("ours", 1), ("transformers", 1)] * 3
    assert log[8:] == [("ours", 8), ("transformers", 8)] * 4
    assert results["ours"][1]["seconds"] == 1.0 and results["transformers"][1]["seconds"] == 2.0
    assert results["ours"][1]["warmup_s"] == 9.0 and results["transformers"][1]["warmup_s"] == 1.0
    assert results["ours"][1]["tok_s"] == 16.0 and results["transformers"][8]["tok_s"] == 8 * 16 / 1.0
    assert results["ours"][8]["who"] == "ours" and results["ours"][8]["step_ms"] == 2.0
    assert rows == {"ours": [1, 16], "transformers": [1, 16]}     # batch 1's first row


def test_ours_alone_without_a_peer():
    log, clock = [], Clock()
    results, rows = bench_decode.take_turns([Side("ours", [1.0, 3.0, 2.0], log, clock)],
                                            [[1] * 4], [1], 4, 2, clock=clock)
    assert set(results) == {"ours"} and results["ours"][1]["seconds"] == 2.0 and set(rows) == {"ours"}
