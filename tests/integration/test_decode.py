"""The key/value-cache decoder against MindFormers' own full-recompute Llama forward.

A tiny random MindFormers LlamaForCausalLM (GQA: 4 heads over 2 kv heads, random norm
weights so RMSNorm's scale matters) is the reference: a greedy loop that re-runs the whole
prefix through MindFormers for every token. Our decoder, built from the same weights, must
pick the same tokens, and batching (left padding, mixed lengths, filler rows) must not change
any row's tokens. Both matmul paths are checked: pipeline.kernels' packed kernel (the
default where g++ builds it; every width of the tiny model divides into its blocks) and
MindSpore's own MatMul.
"""
from __future__ import annotations

import numpy as np
import pytest

ms = pytest.importorskip("mindspore")

from pipeline.decode import GreedyDecoder, weights_from_model  # noqa: E402
from pipeline.errors import PipelineError  # noqa: E402
from pipeline.model.build import dims_from_llama_config  # noqa: E402
from pipeline.model.params import ModelDims  # noqa: E402

SEQ = 48
VOCAB = 96


def _tiny_mindformers(tie: bool, seed: int):
    from mindformers import LlamaConfig, LlamaForCausalLM
    ms.set_context(mode=ms.GRAPH_MODE, device_target="CPU")
    config = LlamaConfig(
        batch_size=1, seq_length=SEQ, hidden_size=32, num_layers=2, num_heads=4, n_kv_heads=2,
        vocab_size=VOCAB, intermediate_size=64, rms_norm_eps=1e-5, theta=10000.0,
        compute_dtype="float32", layernorm_compute_type="float32", softmax_compute_type="float32",
        rotary_dtype="float32", param_init_type="float32", embedding_init_type="float32",
        use_past=False, use_flash_attention=False, fused_rms_norm=False, use_rope_slice=True,
        pad_token_id=0, bos_token_id=1, eos_token_id=2, tie_word_embeddings=tie,
        checkpoint_name_or_path="")
    model = LlamaForCausalLM(config)
    model.set_train(False)
    rng = np.random.default_rng(seed)
    for name, p in model.parameters_and_names():
        if "norm" in name:
            data = 1.0 + rng.normal(0, 0.2, p.shape)
        else:
            data = rng.normal(0, 0.4, p.shape)
        p.set_data(ms.Tensor(data.astype(np.float32)))
    return model, config


def _reference_greedy(model, prompt: list[int], new: int) -> tuple[list[int], list[np.ndarray]]:
    """Greedy loop over MindFormers' forward, full prefix every step (right-padded to SEQ)."""
    ids, all_logits = list(prompt), []
    for _ in range(new):
        x = np.zeros((1, SEQ), np.int32)
        x[0, :len(ids)] = ids
        logits = model(ms.Tensor(x))[0].asnumpy()[0, len(ids) - 1]
        all_logits.append(logits)
        ids.append(int(logits.argmax()))
    return ids[len(prompt):], all_logits


@pytest.fixture(scope="module")
def tied():
    model, config = _tiny_mindformers(tie=True, seed=0)
    return model, config, weights_from_model(model)


def _prompts(seed: int, lengths) -> list[list[int]]:
    rng = np.random.default_rng(seed)
    # ids >= 3: MindFormers masks keys equal to the pad id 0, so a prompt never holds it
    return [[int(t) for t in rng.integers(3, VOCAB, size=n)] for n in lengths]


@pytest.mark.parametrize("kernel", [True, False], ids=["packed", "mindspore"])
@pytest.mark.parametrize("tie", [True, False])
def test_greedy_tokens_equal_mindformers_full_recompute(tie, kernel, tied):
    model, config, weights = tied if tie else (*_tiny_mindformers(tie=False, seed=1), None)
    if weights is None:
        weights = weights_from_model(model)
        assert "lm_head.weight" in weights   # the untied head is really exercised
    prompts = _prompts(3, [5, 11, 2])
    decoder = GreedyDecoder(weights, *dims_from_llama_config(config), batch_size=1, bucket=8,
                            kernel=kernel)
    assert decoder.kernel == ("packed" if kernel else "mindspore")
    for prompt in prompts:
        expected, ref_logits = _reference_greedy(model, prompt, 8)
        got = decoder.generate([prompt], max_new_tokens=8, stop_ids=[])[0]
        assert got.tokens == expected
        assert got.stop_reason == "length"
    # logits themselves agree, not only their argmax: rerun the prefill of the last prompt
    width = 16
    tokens = np.zeros((1, width), np.int64)
    tokens[0, width - len(prompt):] = prompt
    visible = np.zeros((1, 24), bool)
    visible[0, width - len(prompt):width] = True
    positions = np.maximum(np.arange(width) - (width - len(prompt)), 0)[None]
    logits = decoder.logits_step(tokens, positions, 0, visible)[0]
    np.testing.assert_allclose(logits, ref_logits[0], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("kernel", [True, False], ids=["packed", "mindspore"])
def test_batched_left_padded_equals_batch_size_one(kernel, tied):
    model, config, weights = tied
    dims, token_ids = dims_from_llama_config(config)
    prompts = _prompts(7, [3, 17, 9, 1, 12])
    single = GreedyDecoder(weights, dims, token_ids, batch_size=1, bucket=8, kernel=kernel)
    alone = [single.generate([p], max_new_tokens=10, stop_ids=[])[0].tokens for p in prompts]
    # batch of 8 holding 5 prompts: 3 filler rows, lengths 1..17 padded to one bucket of 24
    # (rows 1-8 of a chunk of 8 x 8 tokens: the kernel's full row groups of 8 and a rest)
    batched = GreedyDecoder(weights, dims, token_ids, batch_size=8, bucket=8, kernel=kernel)
    together = [g.tokens for g in batched.generate(prompts, max_new_tokens=10, stop_ids=[])]
    assert together == alone
    assert len({tuple(t) for t in alone}) == len(prompts)  # rows really differ
    # and the reference agrees for the longest prompt
    assert together[1] == _reference_greedy(model, prompts[1], 10)[0]


def test_swapped_weights_decode_as_a_fresh_decoder_without_recompiling(tied):
    """set_weights (eval-checkpoints: one decoder, every adapter) gives the tokens a decoder
    built from those weights gives, and compiles nothing new."""
    model, config, weights = tied
    dims, token_ids = dims_from_llama_config(config)
    rng = np.random.default_rng(5)
    other = {k: (v + rng.normal(0, 0.3, v.shape)).astype(np.float32) if ".attention.w" in k
             else v for k, v in weights.items()}
    prompts = _prompts(13, [4, 9, 6])
    fresh = GreedyDecoder(other, dims, token_ids, batch_size=4, bucket=8)
    expected = [g.tokens for g in fresh.generate(prompts, max_new_tokens=8, stop_ids=[])]

    swapped = GreedyDecoder(weights, dims, token_ids, batch_size=4, bucket=8)
    before = [g.tokens for g in swapped.generate(prompts, max_new_tokens=8, stop_ids=[])]
    assert before != expected                      # the two weight sets really differ
    compiled, seconds = set(swapped._compiled), swapped.compile_seconds
    swapped.set_weights(other)
    assert [g.tokens for g in swapped.generate(prompts, max_new_tokens=8, stop_ids=[])] == expected
    # no new graph: the compile clock moves by the set lookups only (a compile takes seconds)
    assert swapped._compiled == compiled and swapped.compile_seconds - seconds < 0.5
    swapped.set_weights(weights)                   # and back
    assert [g.tokens for g in swapped.generate(prompts, max_new_tokens=8, stop_ids=[])] == before
    with pytest.raises(PipelineError, match="shape"):
        swapped.set_weights({k: v[..., :-1] if k.endswith("wo.weight") else v
                             for k, v in weights.items()})
    # the refused swap changed nothing
    assert [g.tokens for g in swapped.generate(prompts, max_new_tokens=8, stop_ids=[])] == before


def test_stop_ids_and_min_new_tokens(tied):
    model, config, weights = tied
    decoder = GreedyDecoder(weights, *dims_from_llama_config(config), batch_size=2, bucket=8)
    prompt = _prompts(11, [6])[0]
    expected, ref_logits = _reference_greedy(model, prompt, 3)
    first = expected[0]
    # the first greedy token declared a stop id: nothing is generated
    stopped = decoder.generate([prompt], max_new_tokens=5, stop_ids=[first])[0]
    assert stopped.tokens == [] and stopped.stop_reason == "eos"
    # min_new_tokens=1 suppresses it: the runner-up of the reference logits comes out first
    runner_up = int(np.argsort(ref_logits[0])[-2])
    forced = decoder.generate([prompt], max_new_tokens=5, min_new_tokens=1, stop_ids=[first])[0]
    assert forced.tokens[0] == runner_up
    assert first not in forced.tokens
    # a stop id met at step 2 ends that row only; the other row runs to max_new_tokens
    other = _prompts(12, [4])[0]
    both = decoder.generate([prompt, other], max_new_tokens=6, stop_ids=[expected[1]])
    assert both[0].tokens == expected[:1] and both[0].stop_reason == "eos"
    assert len(both[1].tokens) == 6 or both[1].stop_reason == "eos"


def test_cache_grows_for_a_longer_prompt(tied):
    model, config, weights = tied
    decoder = GreedyDecoder(weights, *dims_from_llama_config(config), batch_size=1,
                            max_len=8, bucket=8)
    prompt = _prompts(5, [30])[0]
    got = decoder.generate([prompt], max_new_tokens=6, stop_ids=[])[0].tokens
    assert decoder.max_len >= 32 + 6
    assert got == _reference_greedy(model, prompt, 6)[0]


def test_bad_requests_are_refused(tied):
    _, config, weights = tied
    decoder = GreedyDecoder(weights, *dims_from_llama_config(config), batch_size=2)
    with pytest.raises(PipelineError, match="batch size"):
        decoder.generate([[5], [6], [7]], max_new_tokens=2)
    with pytest.raises(PipelineError, match="empty prompt"):
        decoder.generate([[5], []], max_new_tokens=2)
    with pytest.raises(PipelineError, match="min_new_tokens"):
        decoder.generate([[5]], max_new_tokens=2, min_new_tokens=3)
    with pytest.raises(PipelineError, match="no tensor 'model.norm_out.weight'"):
        GreedyDecoder({k: v for k, v in weights.items() if k != "model.norm_out.weight"},
                      *dims_from_llama_config(config))
    with pytest.raises(PipelineError, match="no field 'kv_heads'"):
        ModelDims.from_dict({"hidden": 32, "layers": 2, "heads": 4, "ffn": 48, "vocab": 96})


@pytest.mark.parametrize("per_graph", [1, 2, 5])
def test_layer_groups_decode_as_the_whole_model(per_graph, tied):
    """One compiled group graph runs every group of layers with that group's weights as
    arguments: any group size gives MindFormers' tokens, and the weights dict handed over
    with consume_weights is emptied as it is folded (no second copy kept)."""
    model, config, weights = tied
    dims, token_ids = dims_from_llama_config(config)
    prompt = _prompts(21, [9])[0]
    handed = dict(weights)
    decoder = GreedyDecoder(handed, dims, token_ids, batch_size=2, bucket=8,
                            layers_per_graph=per_graph, consume_weights=True)
    assert decoder._sizes == ([1, 1] if per_graph == 1 else [2])
    got = decoder.generate([prompt], max_new_tokens=6, stop_ids=[])[0].tokens
    assert got == _reference_greedy(model, prompt, 6)[0]
    assert not any(k.startswith("model.layers.") for k in handed)


def test_cells_follow_the_span_and_a_new_span_decodes_the_same(tied):
    """Cells live for one span at a time (their graphs' buffers go with them): a prompt
    needing a wider span gets fresh cells, and going back decodes as before."""
    model, config, weights = tied
    dims, token_ids = dims_from_llama_config(config)
    short, long = _prompts(31, [4])[0], _prompts(32, [30])[0]
    decoder = GreedyDecoder(weights, dims, token_ids, batch_size=1, bucket=8, max_len=600)
    first = decoder.generate([short], max_new_tokens=5, stop_ids=[])[0].tokens
    span_short = decoder._span
    decoder.generate([long * 10], max_new_tokens=5, stop_ids=[])   # 300 tokens: a wider span
    assert decoder._span > span_short
    assert decoder.generate([short], max_new_tokens=5, stop_ids=[])[0].tokens == first
    assert first == _reference_greedy(model, short, 5)[0]
