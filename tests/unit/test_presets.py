"""Every preset YAML in configs/ loads; bad presets fail with a message naming the field."""
from pathlib import Path

import pytest
import yaml

from pipeline.errors import PipelineError
from pipeline.model.presets import PROMPT_TEMPLATES, load_preset, with_data, with_overrides

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
PRESET_FILES = sorted(CONFIGS.glob("*.yaml"))


def test_the_three_presets_exist():
    names = {p.name for p in PRESET_FILES}
    assert {"smollm2_135m_lora_cpu.yaml", "tiny_llama_lora_cpu.yaml", "llama3_8b_lora_npu.yaml"} <= names


@pytest.mark.parametrize("path", PRESET_FILES, ids=lambda p: p.name)
def test_every_preset_loads_and_shows_its_launch_command(path):
    preset = load_preset(path)
    assert preset.lora.rank >= 1 and preset.lora.targets
    header = path.read_text(encoding="utf-8").split("\n\n")[0]
    assert "python -m pipeline" in header  # the header shows how to launch it


def test_contest_preset_values():
    p = load_preset(CONFIGS / "llama3_8b_lora_npu.yaml")
    assert (p.model_kind, p.device) == ("llama3-8b", "npu")
    assert (p.lora.rank, p.lora.alpha, p.lora.dropout, p.lora.targets) == (8, 16.0, 0.05, ("wq", "wv"))
    assert (p.train.lr, p.train.epochs, p.train.batch_size, p.train.seq_length) == (1e-5, 5, 64, 256)
    assert (p.train.schedule, p.train.warmup_ratio, p.train.betas) == ("cosine", 0.03, (0.9, 0.95))
    assert p.data.template == PROMPT_TEMPLATES["alpaca"]


def test_smollm2_preset_is_cpu_with_fixed_dims():
    p = load_preset(CONFIGS / "smollm2_135m_lora_cpu.yaml")
    assert (p.dims.hidden, p.dims.layers, p.dims.heads, p.dims.kv_heads, p.dims.ffn, p.dims.vocab) == \
        (576, 30, 9, 3, 1536, 49152)
    assert p.dims.tie_embeddings and p.train.batch_size == 8 and p.train.seq_length == 128
    # The default adapter must stay inside the 1% trainable budget (a ratio of at most 0.01).
    from pipeline.model.params import lora_trainable_for, total_params
    trainable = lora_trainable_for(p.dims, p.lora.rank, p.lora.targets)
    assert trainable == 1_221_120 and trainable / total_params("smollm2-135m") < 0.01


def _write(tmp_path, doc) -> Path:
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return path


BASE = {"model": {"kind": "tiny"}, "lora": {"rank": 4, "targets": ["wq"]},
        "train": {"lr": 0.01}, "data": {"prompt_template": "minimal"}}


@pytest.mark.parametrize("change,field", [
    ({"lora": {"rank": 4, "targets": ["wq"], "alpah": 8}}, "alpah"),           # typo'd key
    ({"extra": 1}, "extra"),                                                   # unknown section
    ({"lora": {"rank": 0, "targets": ["wq"]}}, "lora.rank"),
    ({"lora": {"rank": 4, "targets": ["q_proj"]}}, "lora.targets"),
    ({"lora": {"rank": 4, "targets": ["wq"], "dropout": 1.0}}, "lora.dropout"),
    ({"train": {"lr": "1e-4"}}, "train.lr"),                                   # YAML reads 1e-4 as text
    ({"train": {"schedule": "step"}}, "train.schedule"),
    ({"train": {"batch_size": 0}}, "train.batch_size"),
    ({"train": {"memory_level": "O2"}}, "train.memory_level"),
    ({"train": {"head_trim": "yes"}}, "train.head_trim"),
    ({"data": {"prompt_template": "chatml"}}, "data.prompt_template"),
    ({"model": {"kind": "llama3-8b"}}, "device"),                              # 8B on CPU
    ({"model": {"kind": "smollm2-135m", "dims": {"hidden": 64}}}, "model.dims"),
    ({"model": {"kind": "gpt2"}}, "model.kind"),
    ({"model": {"kind": "tiny", "dims": {"hidden": 60, "heads": 7}}}, "model.dims"),
])
def test_bad_presets_name_the_field(tmp_path, change, field):
    path = _write(tmp_path, {**BASE, **change})
    with pytest.raises(PipelineError) as err:
        load_preset(path)
    assert field in str(err.value) and str(path) in str(err.value)


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(PipelineError, match="not found"):
        load_preset(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: {kind: tiny\n", encoding="utf-8")
    with pytest.raises(PipelineError, match="line"):
        load_preset(bad)


def test_tiny_dims_override_and_cli_overrides(tmp_path):
    p = load_preset(_write(tmp_path, {**BASE, "model": {"kind": "tiny", "dims": {"layers": 3}}}))
    assert p.dims.layers == 3 and p.dims.hidden == 64
    q = with_data(with_overrides(p, max_steps=7, seed=None), "x.mindrecord")
    assert q.train.max_steps == 7 and q.train.seed == p.train.seed and q.data.train == "x.mindrecord"
    assert p.train.max_steps is None  # the original is untouched (frozen dataclasses)


def test_first_layer_is_checked_and_recorded_only_when_set(tmp_path):
    import yaml
    from pipeline.model.presets import load_preset
    raw = yaml.safe_load((CONFIGS / "smollm2_135m_lora_cpu.yaml").read_text())
    assert "first_layer" not in load_preset(CONFIGS / "tiny_llama_lora_cpu.yaml").as_dict()["lora"]
    for bad, message in ((30, "must be 0..29"), (-1, "must be 0..29"), ("x", "expected int")):
        raw["lora"]["first_layer"] = bad
        path = tmp_path / "p.yaml"
        path.write_text(yaml.safe_dump(raw))
        with pytest.raises(PipelineError, match=message) as info:
            load_preset(path)
        assert "p.yaml" in str(info.value) and "lora.first_layer" in str(info.value)
    raw["lora"]["first_layer"] = 15
    path.write_text(yaml.safe_dump(raw))
    assert load_preset(path).as_dict()["lora"]["first_layer"] == 15
    npu = yaml.safe_load((CONFIGS / "llama3_8b_lora_npu.yaml").read_text())
    npu["lora"]["first_layer"] = 16   # NPU presets take it too (npu-check verifies pet's exclusion)
    path.write_text(yaml.safe_dump(npu))
    assert load_preset(path).lora.first_layer == 16


def test_pack_needs_head_trim_and_the_cpu(tmp_path):
    text = (CONFIGS / "tiny_llama_lora_cpu.yaml").read_text()
    assert "pack" not in load_preset(CONFIGS / "tiny_llama_lora_cpu.yaml").as_dict()["train"]
    good = tmp_path / "packed.yaml"
    good.write_text(text.replace("  seed: 42", "  seed: 42\n  pack: true"))
    assert load_preset(good).as_dict()["train"]["pack"] is True
    bad = tmp_path / "untrimmed.yaml"
    bad.write_text(text.replace("  seed: 42", "  seed: 42\n  pack: true\n  head_trim: false"))
    with pytest.raises(PipelineError, match="train.pack: .*head_trim"):
        load_preset(bad)
    typo = tmp_path / "typo.yaml"
    typo.write_text(text.replace("  seed: 42", "  seed: 42\n  pack: yes please"))
    with pytest.raises(PipelineError, match="train.pack: expected bool"):
        load_preset(typo)
    npu = tmp_path / "npu.yaml"
    npu.write_text((CONFIGS / "llama3_8b_lora_npu.yaml").read_text().replace(
        "\ntrain:\n", "\ntrain:\n  pack: true\n", 1))
    with pytest.raises(PipelineError, match="train.pack: packing is the CPU trainer's"):
        load_preset(npu)
