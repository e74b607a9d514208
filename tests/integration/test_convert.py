"""The GGUF -> MindFormers conversion of SmolLM2-135M, checked against an independent
reader: transformers 4.57.1 loads the same GGUF with its own dequantiser and its own
inverse of llama.cpp's Q/K permutation. Logits at every prompt position must agree
within 1e-3 and greedy continuations must be the same tokens.

MindFormers' generate() does not run on CPU, so our side is a full-recompute greedy
loop over a fixed-length (right-padded) input: one graph compile, then one forward
per new token.
"""
import numpy as np
import pytest

from pipeline.model.gguf import mindformers_name, unpermute_rope_rows

PROMPTS = ["计算 12.50 + 7.25 等于多少？\n\n### Response:",
           "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n",
           "The quick brown fox"]
NEW_TOKENS = 12
WIDTH = 64


def _llama_cpp_permute(w, n_heads):
    """llama.cpp convert_hf_to_gguf.py's LlamaModel.permute (HF halves -> interleaved)."""
    return (w.reshape(n_heads, 2, w.shape[0] // n_heads // 2, *w.shape[1:])
             .swapaxes(1, 2).reshape(w.shape))


def test_unpermute_inverts_llama_cpp():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(9 * 64, 576)).astype(np.float32)
    assert np.array_equal(unpermute_rope_rows(_llama_cpp_permute(w, 9), 9), w)
    k = rng.normal(size=(3 * 64, 576)).astype(np.float32)
    assert np.array_equal(unpermute_rope_rows(_llama_cpp_permute(k, 3), 3), k)
    # a head's rows 0, 1 (an interleaved pair) go to rows 0 and 32 (the two halves)
    perm = unpermute_rope_rows(np.arange(64, dtype=np.float32)[:, None], 1)[:, 0]
    assert perm[0] == 0 and perm[32] == 1 and perm[1] == 2


def test_names_map_to_mindformers():
    assert mindformers_name("blk.7.attn_q.weight") == "model.layers.7.attention.wq.weight"
    assert mindformers_name("blk.0.ffn_gate.weight") == "model.layers.0.feed_forward.w1.weight"
    assert mindformers_name("blk.0.ffn_down.weight") == "model.layers.0.feed_forward.w2.weight"
    assert mindformers_name("token_embd.weight") == "model.tok_embeddings.embedding_weight"
    assert mindformers_name("output_norm.weight") == "model.norm_out.weight"


@pytest.fixture(scope="module")
def prompt_ids():
    from pipeline.model.tokenizer import load_tokenizer
    tok = load_tokenizer()
    return [tok.encode(p, add_special_tokens=False).ids for p in PROMPTS]


@pytest.fixture(scope="module")
def reference(prompt_ids):
    """transformers' logits for each prompt and its greedy continuation."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from pipeline.model.tokenizer import smollm2_gguf_path
    gguf = smollm2_gguf_path()
    torch.manual_seed(0)
    model = transformers.AutoModelForCausalLM.from_pretrained(
        str(gguf.parent), gguf_file=gguf.name, torch_dtype=torch.float32)
    model.eval()
    out = []
    with torch.no_grad():
        for ids in prompt_ids:
            x = torch.tensor([ids])
            logits = model(x).logits[0].numpy()
            gen = model.generate(x, max_new_tokens=NEW_TOKENS, do_sample=False,
                                 pad_token_id=0, eos_token_id=None)[0, len(ids):].tolist()
            out.append((logits, gen))
    del model
    return out


@pytest.mark.integration
@pytest.mark.slow
def test_mindformers_matches_transformers(prompt_ids, reference):
    import mindspore as ms
    from pipeline.model.build import build_model, setup_context
    from pipeline.model.gguf import load_converted
    from pipeline.model.presets import load_preset
    from pipeline.model.tokenizer import PAD_ID
    from pathlib import Path

    weights, dims = load_converted()
    assert dims.rope_theta == 100000.0 and abs(dims.eps - 1e-5) < 1e-9
    assert dims.tie_embeddings and "lm_head.weight" not in weights
    assert sum(w.size for w in weights.values()) == 134_515_008

    preset = load_preset(Path(__file__).resolve().parents[2] / "configs" / "smollm2_135m_lora_cpu.yaml")
    setup_context()
    model = build_model(preset, seq_length=WIDTH, batch_size=1)

    def logits_of(ids):
        # Right padding with id 0 never affects earlier positions (causal mask).
        x = np.full((1, WIDTH), PAD_ID, np.int32)
        x[0, :len(ids)] = ids
        return model(ms.Tensor(x))[0].asnumpy().reshape(WIDTH, -1)[:len(ids)]

    for ids, (ref_logits, ref_gen) in zip(prompt_ids, reference):
        ours = logits_of(ids)
        assert ours.shape == ref_logits.shape
        assert np.abs(ours - ref_logits).max() < 1e-3
        assert (ours.argmax(-1) == ref_logits.argmax(-1)).all()
        seq = list(ids)
        for _ in range(NEW_TOKENS):
            seq.append(int(logits_of(seq)[-1].argmax()))
        assert seq[len(ids):] == ref_gen
