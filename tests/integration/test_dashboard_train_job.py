"""The dashboard's "Train a new adapter" path, for real: overrides -> config -> detached
`pipeline train` job -> a trained run folder (tiny preset, a few seconds of MindSpore)."""
import json
import time

import pytest
import yaml

from pipeline import jobs
from pipeline.model.params import lora_trainable_for
from pipeline.model.presets import load_preset

pytestmark = pytest.mark.integration


def test_sidebar_train_job_trains_with_overrides(tmp_path, repo_root=jobs.REPO_ROOT):
    rows = [{"problem": f"计算 {a}.00 + {b}.00 等于多少？", "solution": f"{a}.00 + {b}.00 = {a + b}.00"}
            for a, b in zip(range(10, 42), range(50, 82))]
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    preset = yaml.safe_load((repo_root / "configs/tiny_llama_lora_cpu.yaml").read_text(encoding="utf-8"))
    preset["data"]["train"] = str(data)
    base = tmp_path / "tiny.yaml"
    base.write_text(yaml.safe_dump(preset), encoding="utf-8")

    results = tmp_path / "results"
    run = results / "tiny-r2"
    config = jobs.write_train_config(base, run / "train_config.yaml", rank=2, targets=["wq", "wv"])
    job = jobs.start(run, jobs.train_argv(config, "tiny-r2", 3, results))
    assert job["status"] == "running"
    deadline = time.monotonic() + 240
    while jobs.is_alive(run) and time.monotonic() < deadline:
        time.sleep(1)
    final = jobs.read_job(run)
    assert final["status"] == "done", jobs.tail(run, 30)

    log = (run / "train.log").read_text(encoding="utf-8")
    p = load_preset(config)
    expected = lora_trainable_for(p.dims, 2, ["wq", "wv"])
    assert f"Network Parameters: {expected}." in log
    assert log.count("step:[") == 3
    manifest = json.loads((run / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["adapter"]["rank"] == 2 and manifest["adapter"]["targets"] == ["wq", "wv"]
    progress = json.loads((run / "progress.json").read_text(encoding="utf-8"))
    assert progress["done"] == 3 and progress["status"] == "finished"
