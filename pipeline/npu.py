"""Llama3-8B on Ascend: MindFormers run YAML (finetune, math predict, SQuAD eval) and
the msrun / run_mindformer.py commands that launch them (docs/contest.md section 1).

Nothing here needs an NPU: it renders text. `render_*` are pure (preset -> dict);
write_run_yamls writes them; launch_commands prints the exact shell lines for 1 and
N cards and a two-node example. The YAML follows MindFormers' research/llama3
layout (trainer, runner_config, optimizer, lr_schedule, train_dataset, parallel_config,
model.model_config with pet_config).
"""
from __future__ import annotations

import copy
import shlex
from pathlib import Path

import yaml

from pipeline.errors import PipelineError
from pipeline.model.params import excluded_layers, target_regex

YAML_NAMES = {"finetune": "finetune_llama3_8b_lora.yaml",
              "finetune_1card": "finetune_llama3_8b_lora_1card.yaml",
              "predict_math": "predict_llama3_8b_math.yaml",
              "eval_squad": "eval_llama3_8b_squad.yaml"}
LLAMA3_SPECIAL = {"bos_token_id": 128000, "eos_token_id": 128001, "pad_token_id": 128002}
MODEL_PARALLEL = 4  # the contest's 4 x 32 GB setting shards the model 4 ways


def _parallel(cards: int) -> tuple[int, int]:
    """(data_parallel, model_parallel) for a card count: model parallel up to 4, the rest data."""
    if cards < 1 or cards & (cards - 1):
        raise PipelineError(f"--cards must be a power of two, got {cards}")
    mp = min(cards, MODEL_PARALLEL)
    return cards // mp, mp


def _model_config(preset, seq_length: int, batch_size: int, checkpoint: str, predict: bool) -> dict:
    d = preset.dims
    cfg = {
        "type": "LlamaConfig", "batch_size": batch_size, "seq_length": seq_length,
        "hidden_size": d.hidden, "num_layers": d.layers, "num_heads": d.heads, "n_kv_heads": d.kv_heads,
        "vocab_size": d.vocab, "intermediate_size": d.ffn, "rms_norm_eps": d.eps,
        **LLAMA3_SPECIAL, "ignore_token_id": -100,
        "compute_dtype": "bfloat16", "layernorm_compute_type": "float32",
        "softmax_compute_type": "float32", "rotary_dtype": "float32", "param_init_type": "float32",
        "use_past": predict, "scaling_factor": 1.0, "theta": d.rope_theta, "extend_method": "None",
        "use_flash_attention": True, "offset": 0, "fine_grain_interleave": 1,
        "checkpoint_name_or_path": checkpoint, "repetition_penalty": 1, "max_decode_length": 512,
        "top_k": 3, "top_p": 1, "do_sample": False,
        "pet_config": {"pet_type": "lora", "lora_rank": preset.lora.rank,
                       "lora_alpha": preset.lora.alpha, "lora_dropout": preset.lora.dropout,
                       "target_modules": target_regex(preset.lora.targets),
                       # LoRA on layers first_layer.. only: pet's own list of layer-index regexes
                       **({"exclude_layers": excluded_layers(preset.lora.first_layer)}
                          if preset.lora.first_layer else {})},
    }
    if predict:
        cfg.update(is_dynamic=True, block_size=16, num_blocks=512)
    return {"model_config": cfg, "arch": {"type": "LlamaForCausalLM"}}


def _common(preset, run_mode: str, cards: int, checkpoint: str, tokenizer: str) -> dict:
    dp, mp = _parallel(cards)
    return {
        "seed": preset.train.seed, "output_dir": "./output", "load_checkpoint": checkpoint,
        "src_strategy_path_or_dir": "", "auto_trans_ckpt": cards > 1, "only_save_strategy": False,
        "resume_training": False, "run_mode": run_mode, "use_parallel": cards > 1,
        "trainer": {"type": "CausalLanguageModelingTrainer", "model_name": "llama3_8b"},
        "context": {"mode": 0, "device_target": "Ascend", "enable_graph_kernel": False,
                    "max_call_depth": 10000, "max_device_memory": "26GB", "save_graphs": False,
                    "device_id": 0, "runtime_num_threads": 1},
        "parallel": {"parallel_mode": 1, "gradients_mean": False, "enable_alltoall": False,
                     "full_batch": True, "search_mode": "sharding_propagation",
                     "enable_parallel_optimizer": False,
                     "strategy_ckpt_save_file": "./ckpt_strategy.ckpt"},
        "parallel_config": {"data_parallel": dp, "model_parallel": mp, "pipeline_stage": 1,
                            "use_seq_parallel": False, "micro_batch_num": 1, "vocab_emb_dp": True,
                            "gradient_aggregation_group": 4},
        "micro_batch_interleave_num": 1,
        "processor": {"return_tensors": "ms", "type": "LlamaProcessor",
                      "tokenizer": {"type": "Llama3Tokenizer", "vocab_file": tokenizer,
                                    "unk_token": None, "bos_token": "<|begin_of_text|>",
                                    "eos_token": "<|end_of_text|>",
                                    "pad_token": "<|reserved_special_token_0|>"}},
    }


def render_finetune(preset, cards: int = 4, checkpoint: str = "", tokenizer: str = "",
                    train_data: str | None = None) -> dict:
    """run_mode finetune: the preset's LoRA, AdamW (betas), cosine LR with warm-up, epochs.

    Global batch = preset.train.batch_size; the per-card batch is that over data parallel.
    """
    t = preset.train
    dp, _ = _parallel(cards)
    if t.batch_size % dp:
        raise PipelineError(f"train.batch_size {t.batch_size} does not split over {dp} data-parallel ranks",
                            preset.path)
    per_card = t.batch_size // dp
    data = {"data_loader": {"type": "MindDataset", "dataset_dir": train_data or preset.data.train,
                            "shuffle": True},
            "input_columns": ["input_ids", "labels"], "num_parallel_workers": 8,
            "python_multiprocessing": False, "drop_remainder": True, "batch_size": per_card,
            "repeat": 1, "numa_enable": False, "prefetch_size": 1}
    schedule = {"cosine": "CosineWithWarmUpLR", "linear": "LinearWithWarmUpLR",
                "constant": "ConstantWarmUpLR"}[t.schedule]
    cfg = _common(preset, "finetune", cards, checkpoint, tokenizer)
    cfg.update({
        "runner_config": {"epochs": t.epochs, "batch_size": per_card, "sink_mode": True, "sink_size": 2},
        "runner_wrapper": {"type": "MFTrainOneStepCell",
                           "scale_sense": {"type": "DynamicLossScaleUpdateCell", "loss_scale_value": 65536,
                                           "scale_factor": 2, "scale_window": 1000},
                           "use_clip_grad": True},
        # MindFormers 1.9 registers AdamW (betas as a pair); the contest's r1.1 called it
        # FP32StateAdamWeightDecay (beta1/beta2), a name 1.9 no longer knows (npu-check).
        "optimizer": {"type": "AdamW", "betas": list(t.betas), "eps": 1.0e-8,
                      "weight_decay": t.weight_decay, "learning_rate": t.lr},
        "lr_schedule": {"type": schedule, "learning_rate": t.lr, "lr_end": 0.0,
                        "warmup_ratio": t.warmup_ratio, "total_steps": -1},
        "train_dataset": data,
        "train_dataset_task": {"type": "CausalLanguageModelDataset", "dataset_config": copy.deepcopy(data)},
        "recompute_config": {"recompute": True, "select_recompute": False,
                             "parallel_optimizer_comm_recompute": False, "mp_comm_recompute": True,
                             "recompute_slice_activation": True},
        "callbacks": [{"type": "MFLossMonitor"},
                      {"type": "CheckpointMonitor", "prefix": "llama3_8b_lora",
                       "save_checkpoint_steps": t.save_interval, "integrated_save": False,
                       "async_save": False}],
        "model": _model_config(preset, t.seq_length, per_card, checkpoint, predict=False),
    })
    return cfg


def render_predict_math(preset, cards: int = 1, checkpoint: str = "", tokenizer: str = "") -> dict:
    """run_mode predict with the KV cache (use_past): greedy, batch 1, the fine-tuned checkpoint."""
    cfg = _common(preset, "predict", cards, checkpoint, tokenizer)
    cfg["model"] = _model_config(preset, 512, 1, checkpoint, predict=True)
    cfg["model"]["model_config"]["max_new_tokens"] = 128
    return cfg


def render_eval_squad(preset, cards: int = 1, checkpoint: str = "", tokenizer: str = "",
                      eval_data: str = "/path/to/squad2048.mindrecord") -> dict:
    """run_mode eval with EmF1Metric: greedy, max_new_tokens 20, min_new_tokens 1 (spec section 4)."""
    cfg = _common(preset, "eval", cards, checkpoint, tokenizer)
    data = {"data_loader": {"type": "MindDataset", "dataset_dir": eval_data, "shuffle": False},
            "input_columns": ["input_ids", "labels"], "num_parallel_workers": 8,
            "python_multiprocessing": False, "drop_remainder": False, "batch_size": 1,
            "repeat": 1, "numa_enable": False, "prefetch_size": 1}
    cfg.update({"metric": {"type": "EmF1Metric"}, "eval_dataset": data,
                "eval_dataset_task": {"type": "CausalLanguageModelDataset",
                                      "dataset_config": copy.deepcopy(data)}})
    cfg["model"] = _model_config(preset, 2048, 1, checkpoint, predict=False)
    cfg["model"]["model_config"].update(max_new_tokens=20, min_new_tokens=1, max_decode_length=2048)
    return cfg


def write_run_yamls(preset, out_dir, cards: int = 4, checkpoint: str = "/path/to/llama3_8b.ckpt",
                    tokenizer: str = "/path/to/tokenizer.model") -> dict[str, Path]:
    """Write the three run YAMLs into out_dir; returns {kind: path}."""
    if preset.model_kind != "llama3-8b":
        raise PipelineError(f"NPU run YAML is only rendered for llama3-8b, not {preset.model_kind}",
                            preset.path)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    source = f"# Rendered by `python -m pipeline npu-commands` from {preset.path or preset.name}; "
    docs = {"finetune": (render_finetune(preset, cards, checkpoint, tokenizer),
                         f"LoRA fine-tuning on {cards} card(s)"),
            "finetune_1card": (render_finetune(preset, 1, checkpoint, tokenizer),
                               "LoRA fine-tuning on 1 card"),
            "predict_math": (render_predict_math(preset, 1, checkpoint, tokenizer),
                             "math predictions (1 card)"),
            "eval_squad": (render_eval_squad(preset, 1, checkpoint, tokenizer), "SQuAD eval (1 card)")}
    paths = {}
    for kind, (doc, what) in docs.items():
        path = out / YAML_NAMES[kind]
        text = source + what + ". Edit paths, not values.\n" + yaml.safe_dump(doc, sort_keys=False,
                                                                               allow_unicode=True)
        path.write_text(text, encoding="utf-8")
        paths[kind] = path
    return paths


def launch_commands(paths: dict[str, Path], mindformers_dir: str = "/path/to/mindformers",
                    train_data: str = "/path/to/train.mindrecord",
                    predict_data: str = "/path/to/test_math.json") -> dict[str, str]:
    """Shell lines for MindFormers' msrun launcher (run from the MindFormers checkout).

    msrun_launcher.sh "<run_mindformer.py args>" WORKER_NUM [LOCAL_WORKER MASTER_ADDR PORT
    NODE_RANK LOG_DIR JOIN TIMEOUT]; single card runs run_mindformer.py directly.
    """
    q = shlex.quote
    ft, ft1, pm, ev = (str(Path(paths[k]).resolve())
                       for k in ("finetune", "finetune_1card", "predict_math", "eval_squad"))
    ft_doc = yaml.safe_load(Path(ft).read_text())
    cards = ft_doc["parallel_config"]["data_parallel"] * ft_doc["parallel_config"]["model_parallel"]

    def job(cfg, mode, extra, parallel):
        return (f"run_mindformer.py --config {cfg} --run_mode {mode} "
                f"--use_parallel {parallel} {extra}").strip()
    ft_args = f"--load_checkpoint {q(ft_doc['load_checkpoint'])} --train_dataset_dir {q(train_data)}"
    cd = f"cd {q(mindformers_dir)} && "
    return {
        "finetune_1card": cd + "python " + job(ft1, "finetune", ft_args, False),
        f"finetune_{cards}cards": cd + f"bash scripts/msrun_launcher.sh {q(job(ft, 'finetune', ft_args + ' --auto_trans_ckpt True', True))} {cards}",
        "finetune_2nodes_x8": ("# render the YAML with --cards 16 first (data parallel 4 x model parallel 4);\n"
                               "# node 0 is the master (192.168.1.1); run the same line on node 1 with NODE_RANK 1\n" + cd +
                               f"bash scripts/msrun_launcher.sh {q(job(ft, 'finetune', ft_args + ' --auto_trans_ckpt True', True))} "
                               "16 8 192.168.1.1 8118 0 output/msrun_log False 300"),
        "predict_math": cd + "python " + job(pm, "predict", f"--predict_data {predict_data}", False),
        "eval_squad": cd + "python " + job(ev, "eval", "--eval_dataset_dir /path/to/squad2048.mindrecord", False),
    }
