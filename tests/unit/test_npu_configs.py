"""Rendered MindFormers run YAML for Llama3-8B: keys, LoRA block, parallelism, paths, commands.

No NPU here: these check the text we hand to MindFormers, not a run.
"""
from pathlib import Path

import pytest
import yaml

from pipeline.errors import PipelineError
from pipeline.model.params import lora_trainable
from pipeline.model.presets import load_preset
from pipeline.npu import YAML_NAMES, launch_commands, render_finetune, write_run_yamls

REPO = Path(__file__).resolve().parents[2]
PRESET = REPO / "configs" / "llama3_8b_lora_npu.yaml"


@pytest.fixture(scope="module")
def preset():
    return load_preset(PRESET)


@pytest.fixture()
def rendered(preset, tmp_path):
    paths = write_run_yamls(preset, tmp_path, cards=4, checkpoint="/ckpt/llama3_8b.ckpt",
                            tokenizer="/tok/tokenizer.model")
    return paths, {k: yaml.safe_load(p.read_text(encoding="utf-8")) for k, p in paths.items()}


def test_finetune_yaml_carries_the_contest_recipe(rendered):
    _, docs = rendered
    ft = docs["finetune"]
    assert ft["run_mode"] == "finetune" and ft["use_parallel"] is True
    pet = ft["model"]["model_config"]["pet_config"]
    assert pet == {"pet_type": "lora", "lora_rank": 8, "lora_alpha": 16.0, "lora_dropout": 0.05,
                   "target_modules": ".*wq|.*wv"}
    assert ft["parallel_config"]["model_parallel"] == 4 and ft["parallel_config"]["data_parallel"] == 1
    assert ft["runner_config"] == {"epochs": 5, "batch_size": 64, "sink_mode": True, "sink_size": 2}
    assert ft["lr_schedule"]["type"] == "CosineWithWarmUpLR"
    assert ft["lr_schedule"]["learning_rate"] == 1e-5 and ft["lr_schedule"]["warmup_ratio"] == 0.03
    assert ft["optimizer"]["type"] == "AdamW" and ft["optimizer"]["betas"] == [0.9, 0.95]
    mc = ft["model"]["model_config"]
    assert (mc["seq_length"], mc["hidden_size"], mc["num_layers"], mc["n_kv_heads"], mc["vocab_size"]) == \
        (256, 4096, 32, 8, 128256)
    assert mc["compute_dtype"] == "bfloat16" and ft["model"]["arch"]["type"] == "LlamaForCausalLM"
    assert ft["train_dataset"]["input_columns"] == ["input_ids", "labels"]
    assert ft["load_checkpoint"] == "/ckpt/llama3_8b.ckpt"
    assert ft["processor"]["tokenizer"]["vocab_file"] == "/tok/tokenizer.model"


def test_the_yaml_lora_block_gives_the_logged_parameter_count(rendered):
    pet = rendered[1]["finetune"]["model"]["model_config"]["pet_config"]
    targets = [t.replace(".*", "") for t in pet["target_modules"].split("|")]
    assert lora_trainable("llama3-8b", pet["lora_rank"], targets) == 3_407_872


def test_one_card_yaml_and_batch_split(preset, rendered):
    _, docs = rendered
    one = docs["finetune_1card"]
    assert one["use_parallel"] is False
    assert one["parallel_config"]["model_parallel"] == 1 and one["runner_config"]["batch_size"] == 64
    sixteen = render_finetune(preset, cards=16)
    assert sixteen["parallel_config"]["data_parallel"] == 4
    assert sixteen["runner_config"]["batch_size"] == 16  # global 64 over 4 data-parallel ranks


def test_predict_and_eval_yaml(rendered):
    _, docs = rendered
    pm, ev = docs["predict_math"], docs["eval_squad"]
    assert pm["run_mode"] == "predict" and pm["model"]["model_config"]["use_past"] is True
    assert pm["model"]["model_config"]["do_sample"] is False
    assert ev["run_mode"] == "eval" and ev["metric"]["type"] == "EmF1Metric"
    assert ev["model"]["model_config"]["max_new_tokens"] == 20
    assert ev["model"]["model_config"]["min_new_tokens"] == 1


def test_launch_commands_name_the_rendered_files(rendered):
    paths, _ = rendered
    cmds = launch_commands(paths, mindformers_dir="/opt/mindformers", train_data="/data/t.mindrecord")
    assert set(cmds) == {"finetune_1card", "finetune_4cards", "finetune_2nodes_x8", "predict_math", "eval_squad"}
    assert "msrun_launcher.sh" in cmds["finetune_4cards"] and cmds["finetune_4cards"].rstrip().endswith(" 4")
    assert str(paths["finetune"].resolve()) in cmds["finetune_4cards"]
    assert str(paths["finetune_1card"].resolve()) in cmds["finetune_1card"]
    assert "--run_mode finetune" in cmds["finetune_1card"] and "/data/t.mindrecord" in cmds["finetune_1card"]
    assert "/ckpt/llama3_8b.ckpt" in cmds["finetune_4cards"]
    assert " 16 8 192.168.1.1 8118 0 " in cmds["finetune_2nodes_x8"]
    assert cmds["predict_math"].count("--run_mode predict") == 1
    assert all(c.startswith(("cd /opt/mindformers", "#")) for c in cmds.values())


def test_committed_run_yaml_matches_the_renderer(preset, tmp_path):
    # configs/mindformers/ is rendered with the defaults; it must not drift from the code.
    paths = write_run_yamls(preset, tmp_path)
    for kind, name in YAML_NAMES.items():
        committed = REPO / "configs" / "mindformers" / name
        assert yaml.safe_load(committed.read_text(encoding="utf-8")) == \
            yaml.safe_load(paths[kind].read_text(encoding="utf-8")), name


def test_refuses_cpu_presets_and_bad_card_counts(preset, tmp_path):
    with pytest.raises(PipelineError, match="llama3-8b"):
        write_run_yamls(load_preset(REPO / "configs" / "tiny_llama_lora_cpu.yaml"), tmp_path)
    with pytest.raises(PipelineError, match="power of two"):
        render_finetune(preset, cards=3)
