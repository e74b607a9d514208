"""How a manifest records an adapter path: portable inside the results folder, absolute outside."""
from pathlib import Path

from pipeline.infer import adapter_record


def test_adapter_in_the_same_results_folder_is_relative_to_the_run(tmp_path):
    results = tmp_path / "results"
    assert adapter_record(results / "lora" / "adapter" / "step_4.ckpt", results / "lora") == str(
        Path("adapter") / "step_4.ckpt")
    assert adapter_record(results / "lora" / "adapter" / "step_4.ckpt", results / "val") == str(
        Path("..") / "lora" / "adapter" / "step_4.ckpt")


def test_adapter_outside_the_results_folder_stays_absolute(tmp_path):
    outside = tmp_path / "elsewhere" / "step_4.ckpt"
    assert adapter_record(outside, tmp_path / "results" / "val") == str(outside.resolve())
