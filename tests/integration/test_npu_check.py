"""npu-check: MindFormers itself loads the rendered NPU YAML, builds it tiny on CPU, steps once.

Real MindFormers (MindFormerConfig, build_network + pet LoRA, build_lr/optim/wrapper) and a
real MindSpore training step; only the sizes and the device differ from what an NPU runs.
"""
import json
from pathlib import Path

import pytest
import yaml

from pipeline.__main__ import main
from pipeline.errors import PipelineError
from pipeline.model.presets import load_preset
from pipeline.npu import write_run_yamls
from pipeline.npu_check import load_with_mindformers

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
PRESET = REPO / "configs" / "llama3_8b_lora_npu.yaml"


def test_npu_check_passes_on_the_shipped_preset(capfd):
    assert main(["npu-check", "--config", str(PRESET), "--json"]) == 0
    text = capfd.readouterr().out
    # MindFormers' log lines go to stderr (a logger another test set up earlier in this
    # process may still hold pytest's stdout, so read from the result's first line)
    out = json.loads(text[text.index("{\n"):])
    assert out["yaml"] == "finetune_llama3_8b_lora_1card.yaml" and len(out["checked_yaml"]) == 4
    assert (out["model"], out["pet_type"], out["target_modules"]) == ("LlamaForCausalLM", "lora", ".*wq|.*wv")
    assert out["lora_on"] == ["wq", "wv"]   # what MindFormers' regex matched in the built model
    # Llama3-8B r8 on wq,wv: 32 x (8 * (4096 + 4096) + 8 * (4096 + 1024))
    assert out["trainable"] == 32 * (8 * (4096 + 4096) + 8 * (4096 + 1024)) == 3_407_872
    assert out["ratio"] == pytest.approx(0.000424393, abs=1e-9)
    # tiny dims: 2 layers x r8 x (wq 64 + 64, wv 64 + 2 kv heads x 16)
    assert out["trainable_tiny"] == 2 * 8 * ((64 + 64) + (64 + 32))
    assert 0 < out["step_loss"] < 20 and out["optimizer"] == "AdamW"
    assert out["runner_wrapper"] == "MFTrainOneStepCell"
    # the finetune template has no processor section; generation keys are never read in training
    assert "processor" in out["ignored_keys"] and "model.model_config.top_k" in out["ignored_keys"]
    assert "model.model_config.hidden_size" not in out["ignored_keys"]
    assert "model.model_config.pad_token_id" not in out["ignored_keys"]   # masks attention keys
    assert set(out["changed_keys"]) >= {"model.model_config.hidden_size", "context.device_target"}


def test_a_key_mindformers_rejects_is_an_error_naming_it(tmp_path):
    paths = write_run_yamls(load_preset(PRESET), tmp_path)
    doc = yaml.safe_load(paths["finetune_1card"].read_text(encoding="utf-8"))
    doc["runner_config"]["epoch"] = 3     # a typo of epochs
    bad = tmp_path / "typo.yaml"
    bad.write_text(yaml.safe_dump(doc), encoding="utf-8")
    with pytest.raises(PipelineError, match="typo.yaml: MindFormers rejects this YAML: .*"
                                            "'runner_config' gets an unexpected key: epoch"):
        load_with_mindformers(bad)
    assert load_with_mindformers(paths["finetune_1card"]).runner_config.epochs == 5


def test_first_layer_renders_pet_exclude_layers_and_npu_check_counts_it(tmp_path, capfd):
    raw = yaml.safe_load(PRESET.read_text(encoding="utf-8"))
    raw["lora"]["first_layer"] = 16
    preset_path = tmp_path / "upper.yaml"
    preset_path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    paths = write_run_yamls(load_preset(preset_path), tmp_path / "yamls")
    pet = yaml.safe_load(paths["finetune_1card"].read_text(encoding="utf-8"))["model"]["model_config"]["pet_config"]
    assert pet["exclude_layers"] == ["^(" + "|".join(str(i) for i in range(16)) + ")$"]
    assert main(["npu-check", "--config", str(preset_path), "--json"]) == 0
    text = capfd.readouterr().out
    out = json.loads(text[text.index("{\n"):])
    assert out["first_layer"] == 16
    # half the layers: 16 x (8 * (4096 + 4096) + 8 * (4096 + 1024)), half the shipped 3,407,872
    assert out["trainable"] == 16 * (8 * (4096 + 4096) + 8 * (4096 + 1024)) == 1_703_936
    # MindFormers built LoRA on tiny layer 1 only: 1 x r8 x (wq 64 + 64, wv 64 + 32)
    assert out["trainable_tiny"] == 8 * ((64 + 64) + (64 + 32))
    assert "model.model_config.pet_config.exclude_layers" in out["changed_keys"]


def test_an_exclusion_that_is_not_the_first_layers_is_refused(tmp_path):
    from pipeline.npu_check import _first_adapted_layer
    assert _first_adapted_layer(None, 32, tmp_path) == 0
    assert _first_adapted_layer(["^(0|1|2)$"], 32, tmp_path) == 3
    with pytest.raises(PipelineError, match=r"excludes layers \[1, 2\] of 32"):
        _first_adapted_layer(["^(1|2)$"], 32, tmp_path)
    with pytest.raises(PipelineError, match="expected the first k layers"):
        _first_adapted_layer([".*"], 4, tmp_path)
