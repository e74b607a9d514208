"""scripts/count_working_errors.py: the counts behind docs/experiments.md sections 10-11."""
import importlib.util
import json
from pathlib import Path

import numpy as np

from pipeline.data.rewrite import rewrite_target

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("count_working_errors", ROOT / "scripts/count_working_errors.py")
cwe = importlib.util.module_from_spec(spec)
spec.loader.exec_module(cwe)

ROWS = [{"problem": "计算 -8255.65 + -348.36 等于多少？", "solution": "-8255.65 + -348.36 = -8604.01", "type": "add"},
        {"problem": "计算 4204.22 - 2369.17 等于多少？", "solution": "4204.22 - 2369.17 = 1835.05", "type": "sub"},
        {"problem": "计算 12 - 7 等于多少？", "solution": "12 - 7 = 5", "type": "sub"},
        {"problem": "计算 2 的 1 次方？", "solution": "2^1 = 2", "type": "power"}]


def write(tmp_path, style, answers):
    tests = tmp_path / "tests.jsonl"
    tests.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in ROWS), encoding="utf-8")
    preds = np.array([{"text_generation_text": [r["problem"] + "\n\n### Response: " + a]}
                      for r, a in zip(ROWS, answers)], dtype=object)
    np.save(tmp_path / "p.npy", preds, allow_pickle=True)
    return tmp_path / "p.npy", tests


def target(i, style):
    return rewrite_target(ROWS[i]["problem"], ROWS[i]["solution"], ROWS[i]["type"], 2, style)


def test_aligned_counts_a_wrong_hundreds_digit_and_a_wrong_operand(tmp_path):
    right = target(0, "aligned")
    carry_slip = target(1, "aligned").replace("= 01835.05)", "= 01735.05)").replace("= 1835.05", "= 1735.05")
    bad_operand = target(2, "aligned").replace("00012", "00021")
    out = cwe.count(*write(tmp_path, "aligned", [right, carry_slip, bad_operand, "2^1 = 2"]), "aligned")
    # the wrong operand still ends on the right answer (final lines are compared as written)
    assert out["counts"] == {"add/sub rows": 3, "final answer right": 2, "sign and operands right": 2,
                             "result right": 1}
    assert out["wrong digits per row"] == {1: 1} and out["wrong digits by place"] == {5: 1}  # hundreds


def test_aligned_lsd_tells_a_wrong_sum_from_a_wrong_turn_round(tmp_path):
    wrong_sum = target(0, "aligned_lsd").replace("10.40680 = 08604.01)\n= -8604.01",
                                                 "20.40680 = 08604.02)\n= -8604.02")
    wrong_turn = target(1, "aligned_lsd").replace("= 01835.05)\n= 1835.05", "= 01835.50)\n= 1835.5")
    out = cwe.count(*write(tmp_path, "aligned_lsd", [wrong_sum, wrong_turn, target(2, "aligned_lsd"), ""]),
                    "aligned_lsd")
    c = out["counts"]
    assert c["backwards result right"] == 2 and c["forward result = backwards turned round"] == 2
    assert c["forward result right"] == 1 and c["final answer right"] == 1
    assert out["wrong digits by place"] == {0: 1}   # the hundredths, written first


def test_reversed_counts_backwards_operands_apart_from_the_backwards_sum(tmp_path):
    wrong_copy = target(0, "reversed").replace("= 56.55280 +", "= 56.55282 +")
    wrong_sum = target(1, "reversed").replace("= 50.53810 = 01835.05)\n= 1835.05",
                                              "= 50.53820 = 02835.05)\n= 2835.05")
    out = cwe.count(*write(tmp_path, "reversed", [wrong_copy, wrong_sum, target(2, "reversed"), ""]),
                    "reversed")
    c = out["counts"]
    assert c["sign and operands right"] == 3 and c["backwards operands right"] == 2
    assert c["backwards result right"] == 1 and c["forward result = backwards turned round"] == 2
    assert c["final answer right"] == 2   # the wrong copy still ends on the right answer
    assert out["wrong digits by place"] == {6: 1}   # the thousands, written seventh
