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


def test_a_curve_point_records_its_runs_adapter_relative_to_itself(tmp_path):
    """eval-checkpoints decodes into results/<run>/checkpoints/step_N/: a shipped curve
    must not carry the machine path of the adapter it scored."""
    run = tmp_path / "results" / "lora"
    run.mkdir(parents=True)
    (run / "manifest.json").write_text("{}")
    point = run / "checkpoints" / "step_100"
    assert adapter_record(run / "adapter" / "step_100.ckpt", point) == str(
        Path("..") / ".." / "adapter" / "step_100.ckpt")
    assert (point / adapter_record(run / "adapter" / "step_100.ckpt", point)).resolve() == \
        (run / "adapter" / "step_100.ckpt").resolve()
    # a folder merely named "checkpoints" that is no run keeps the old rule
    other = tmp_path / "checkpoints" / "x"
    assert adapter_record(tmp_path / "a" / "step_1.ckpt", other) == str((tmp_path / "a" / "step_1.ckpt").resolve())
