"""Model shapes and analytic LoRA parameter counts (pure; no MindSpore import).

A LoRA adapter on a dense layer W (out x in) adds A (rank x in) and B (out x rank):
rank * (in + out) trainable values per layer. The contest divides by Llama3-8B's
8,030,000,000 ("8030 M" in its log), not by the exact count.
"""
from __future__ import annotations

from dataclasses import MISSING, asdict, dataclass, fields
from typing import Mapping

from pipeline.contest import LLAMA3_8B_TOTAL_PARAMS
from pipeline.errors import PipelineError

LORA_TARGETS = ("wq", "wk", "wv", "wo", "w1", "w2", "w3")


@dataclass(frozen=True)
class ModelDims:
    """Shape of a Llama-family decoder, in MindFormers' vocabulary: the one description of a
    model's shape that presets, weight conversion, MindFormers configs and the decoder share.
    The special token ids sit beside it (pipeline.model.tokenizer.TokenIds)."""
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    ffn: int
    vocab: int
    eps: float = 1e-5
    rope_theta: float = 10000.0
    tie_embeddings: bool = False

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: Mapping, src=None) -> "ModelDims":
        """From a mapping holding at least the fields without defaults (other keys ignored).

        Raises PipelineError naming the first missing field.
        """
        values = {}
        for f in fields(cls):
            if f.name in raw:
                values[f.name] = raw[f.name]
            elif f.default is MISSING:
                raise PipelineError(f"model config has no field {f.name!r}", src)
        return cls(**values)


# Registry of the models we know; "tiny" is the test preset's default shape.
MODEL_DIMS: dict[str, ModelDims] = {
    "smollm2-135m": ModelDims(hidden=576, layers=30, heads=9, kv_heads=3, ffn=1536, vocab=49152,
                              eps=1e-5, rope_theta=100000.0, tie_embeddings=True),
    "llama3-8b": ModelDims(hidden=4096, layers=32, heads=32, kv_heads=8, ffn=14336, vocab=128256,
                           eps=1e-5, rope_theta=500000.0, tie_embeddings=False),
    # The real SmolLM2 tokenizer (vocab 49152) on a 2-layer, 64-wide model: ~3.2M
    # parameters, almost all embedding; trains a step in well under a second.
    "tiny": ModelDims(hidden=64, layers=2, heads=4, kv_heads=2, ffn=128, vocab=49152,
                      eps=1e-5, rope_theta=10000.0, tie_embeddings=True),
}

MODEL_NAMES = {"smollm2-135m": "SmolLM2-135M-Instruct", "llama3-8b": "Llama3-8B",
               "tiny": "tiny-llama (random)"}


def dims_for(model_kind: str) -> ModelDims:
    try:
        return MODEL_DIMS[model_kind]
    except KeyError:
        raise PipelineError(f"unknown model {model_kind!r}; expected one of "
                            f"{', '.join(MODEL_DIMS)}") from None


def dense_shapes(dims: ModelDims) -> dict[str, tuple[int, int]]:
    """(in, out) of every per-layer dense layer LoRA can target."""
    kv = dims.kv_heads * dims.head_dim
    return {"wq": (dims.hidden, dims.hidden), "wk": (dims.hidden, kv), "wv": (dims.hidden, kv),
            "wo": (dims.hidden, dims.hidden), "w1": (dims.hidden, dims.ffn),
            "w2": (dims.ffn, dims.hidden), "w3": (dims.hidden, dims.ffn)}


def check_targets(targets) -> tuple[str, ...]:
    """Normalise a target list ("wq,wv" or ["wq","wv"]); unknown or repeated names fail."""
    if isinstance(targets, str):
        targets = [t.strip() for t in targets.split(",") if t.strip()]
    targets = tuple(targets)
    if not targets:
        raise PipelineError("LoRA needs at least one target module")
    bad = [t for t in targets if t not in LORA_TARGETS]
    if bad:
        raise PipelineError(f"unknown LoRA target(s) {', '.join(map(str, bad))}; "
                            f"expected some of {', '.join(LORA_TARGETS)}")
    if len(set(targets)) != len(targets):
        raise PipelineError(f"LoRA targets repeat a name: {', '.join(targets)}")
    return targets


def target_regex(targets) -> str:
    """MindFormers' target_modules regex ('.*wq|.*wv'), matched against cell names."""
    return "|".join(f".*{t}" for t in check_targets(targets))


def excluded_layers(first_layer: int) -> list[str] | None:
    """MindFormers' pet ``exclude_layers`` for LoRA on layers first_layer.. only: a regex
    matched against each cell's own name, and a decoder layer's name is its index in
    ``layers`` ("0".."29"); None when no layer is left out."""
    if first_layer <= 0:
        return None
    return [f"^({'|'.join(str(i) for i in range(first_layer))})$"]


def lora_trainable_for(dims: ModelDims, rank: int, targets, first_layer: int = 0) -> int:
    """LoRA A+B parameters for `targets` at `rank` on layers first_layer..layers-1."""
    if rank < 1:
        raise PipelineError(f"LoRA rank must be >= 1, got {rank}")
    if not 0 <= first_layer < dims.layers:
        raise PipelineError(f"LoRA first_layer must be 0..{dims.layers - 1}, got {first_layer}")
    shapes = dense_shapes(dims)
    return (dims.layers - first_layer) * sum(rank * sum(shapes[t]) for t in check_targets(targets))


def lora_trainable(model_kind: str, rank: int, targets) -> int:
    """Trainable LoRA parameters for a known model, e.g. llama3-8b r8 wq,wv -> 3,407,872."""
    return lora_trainable_for(dims_for(model_kind), rank, targets)


def exact_total_for(dims: ModelDims) -> int:
    """Every base weight: embedding, per-layer dense + 2 norms, final norm, untied head."""
    per_layer = sum(i * o for i, o in dense_shapes(dims).values()) + 2 * dims.hidden
    head = 0 if dims.tie_embeddings else dims.vocab * dims.hidden
    return dims.vocab * dims.hidden + dims.layers * per_layer + dims.hidden + head


def total_params(model_kind: str) -> int:
    """Total used in the ratio: the contest's 8,030,000,000 for llama3-8b, else exact."""
    if model_kind == "llama3-8b":
        return LLAMA3_8B_TOTAL_PARAMS
    return exact_total_for(dims_for(model_kind))


def lora_summary(model_kind: str, rank: int, targets) -> dict:
    """{"trainable", "total", "ratio"} as the CLI's lora-params prints it."""
    trainable = lora_trainable(model_kind, rank, targets)
    total = total_params(model_kind)
    return {"model": model_kind, "rank": rank, "targets": list(check_targets(targets)),
            "trainable": trainable, "total": total, "ratio": trainable / total}
