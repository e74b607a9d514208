"""Tokenised (prompt, answer) pairs -> MindRecord files that MindFormers fine-tunes on.

Layout (what the installed MindFormers 1.9.0 legacy ``LlamaForCausalLM`` expects, read off
mindformers/models/llama/llama.py ``construct`` and the contest kit's llama_preprocess.py):
- columns ``input_ids`` and ``labels``, int32, schema shape [-1], every record exactly
  ``seq_length + 1`` long. In training the model itself shifts: it feeds
  ``input_ids[:, :-1]`` and scores against ``labels[:, 1:]``, so one record yields
  ``seq_length`` predictions (the kit calls tokenize_qa with ``seq_length + 1`` for this).
- labels are NOT pre-shifted: ``labels[i] == input_ids[i]`` on answer tokens, ``-100`` on
  prompt tokens and padding (MindFormers masks both ``ignore_token_id`` -100 labels and
  ``pad_token_id`` inputs out of the loss).
- text = prompt + answer_separator + answer, then EOS (``<|im_end|>``, id 2) so the model
  learns to stop; padding id 0 (pad 2 would mask EOS keys in attention; docs/mindformers_cpu.md).
  Prompt and answer are tokenised separately, as MindFormers does per message, so the
  prompt's tokens are exactly those inference will feed. No BOS (SmolLM2 uses none).

Rows longer than ``seq_length + 1`` tokens are never cut silently: ``overlong`` = drop (skip,
counted), truncate (cut, counted) or error.
"""
from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Sequence

import numpy as np

from pipeline.errors import PipelineError
from pipeline.model.tokenizer import EOS_ID, PAD_ID

IGNORE_ID = -100
COLUMNS = ("input_ids", "labels")
SCHEMA = {"input_ids": {"type": "int32", "shape": [-1]},
          "labels": {"type": "int32", "shape": [-1]}}
_BATCH = 2048


def _quiet_mindspore() -> None:
    """MindSpore logs a WARNING per overwritten file; keep the console for the progress bar."""
    os.environ.setdefault("GLOG_v", "3")


def page_sizes_for(rows: int, record_length: int) -> tuple[int, int]:
    """(header_size, page_size) for a file of ``rows`` records, powers of two.

    MindSpore's defaults (16 MiB header, 32 MiB pages) make even a 10-row file 17 MB; size
    them to the data: about 256 pages, each 32 KiB..32 MiB; a 1 MiB header for big files.
    """
    data_bytes = max(1, rows) * record_length * 4 * 2  # two int32 columns
    page = 1 << 15
    while page * 256 < data_bytes and page < (1 << 25):
        page <<= 1
    header = (1 << 20) if data_bytes > (8 << 20) else (1 << 16)
    return header, page


def encode_texts(tokenizer, texts: Sequence[str]) -> list[list[int]]:
    """Token ids of each text (``encode_batch`` when the tokenizer has it)."""
    if hasattr(tokenizer, "encode_batch"):
        return [e.ids for e in tokenizer.encode_batch(list(texts), add_special_tokens=False)]
    return [tokenizer.encode(t, add_special_tokens=False).ids for t in texts]


def build_record(prompt_ids: list[int], answer_ids: list[int], seq_length: int,
                 eos_id: int = EOS_ID, pad_id: int = PAD_ID) -> tuple[np.ndarray, np.ndarray, bool]:
    """One record: (input_ids, labels, was_overlong), each array ``seq_length + 1`` int32.

    EOS is appended to the answer; an overlong sequence is cut to length (caller decides
    whether to keep it).
    """
    length = seq_length + 1
    ids = list(prompt_ids) + list(answer_ids) + [eos_id]
    labels = [IGNORE_ID] * len(prompt_ids) + list(answer_ids) + [eos_id]
    overlong = len(ids) > length
    input_ids = np.full(length, pad_id, dtype=np.int32)
    label_arr = np.full(length, IGNORE_ID, dtype=np.int32)
    n = min(len(ids), length)
    input_ids[:n] = ids[:n]
    label_arr[:n] = labels[:n]
    return input_ids, label_arr, overlong


def write_mindrecord(path, prompts: Sequence[str], answers: Sequence[str], tokenizer,
                     seq_length: int, types: Sequence[str] | None = None, overlong: str = "drop",
                     eos_id: int = EOS_ID, pad_id: int = PAD_ID, progress: bool = True,
                     ids: Sequence[str] | None = None) -> dict:
    """Write one MindRecord file (plus its ``.db`` index) from full prompts and answers.

    prompts: the exact text before the answer (wrapped already); answers: the targets.
    Returns {"path", "written", "overlong": {"count", "action", "by_type", "first_ids"},
    "max_tokens", "mean_tokens"}. Raises PipelineError for overlong="error" on the first
    long row, or for mismatched inputs.
    """
    _quiet_mindspore()
    from mindspore.mindrecord import FileWriter

    from pipeline.data.prompts import answer_separator
    from pipeline.progress import Progress

    if len(prompts) != len(answers):
        raise PipelineError(f"{len(prompts)} prompts but {len(answers)} answers", path)
    if overlong not in ("drop", "truncate", "error"):
        raise PipelineError(f"overlong must be drop, truncate or error, got {overlong!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = FileWriter(file_name=str(path), shard_num=1, overwrite=True)
    header_size, page_size = page_sizes_for(len(prompts), seq_length + 1)
    writer.set_header_size(header_size)
    writer.set_page_size(page_size)
    writer.add_schema(SCHEMA, "contest_math")
    long_types: Counter = Counter()
    long_ids: list[str] = []
    written, total_tokens, max_tokens = 0, 0, 0
    with Progress(len(prompts), f"mindrecord {path.name}", unit="row", disable=not progress) as bar:
        for start in range(0, len(prompts), _BATCH):
            stop = min(start + _BATCH, len(prompts))
            p_ids = encode_texts(tokenizer, prompts[start:stop])
            a_ids = encode_texts(tokenizer, [answer_separator(p) + a for p, a in
                                             zip(prompts[start:stop], answers[start:stop])])
            batch = []
            for offset, (pi, ai) in enumerate(zip(p_ids, a_ids)):
                index = start + offset
                n_tokens = len(pi) + len(ai) + 1
                max_tokens = max(max_tokens, n_tokens)
                total_tokens += n_tokens
                input_ids, labels, is_long = build_record(pi, ai, seq_length, eos_id, pad_id)
                if is_long:
                    row_id = ids[index] if ids is not None else str(index)
                    if overlong == "error":
                        writer.commit()
                        raise PipelineError(f"row {row_id} has {n_tokens} tokens, over seq_length "
                                            f"{seq_length} + 1; raise seq_length or set "
                                            "overlong: drop", path)
                    long_types[types[index] if types is not None else "unknown"] += 1
                    if len(long_ids) < 10:
                        long_ids.append(row_id)
                    if overlong == "drop":
                        continue
                batch.append({"input_ids": input_ids, "labels": labels})
            if batch:
                writer.write_raw_data(batch)
                written += len(batch)
            bar.update(stop - start)
    writer.commit()
    return {"path": str(path), "written": written, "seq_length": seq_length,
            "record_length": seq_length + 1,
            "overlong": {"count": sum(long_types.values()), "action": overlong,
                         "by_type": dict(long_types), "first_ids": long_ids},
            "max_tokens": max_tokens,
            "mean_tokens": round(total_tokens / len(prompts), 2) if prompts else 0.0}


def read_mindrecord(path, columns: Sequence[str] = COLUMNS) -> list[dict]:
    """All records of a MindRecord file, in order, read through ``mindspore.dataset``."""
    _quiet_mindspore()
    import mindspore.dataset as ds

    path = Path(path)
    if not path.is_file():
        raise PipelineError("MindRecord file not found", path)
    dataset = ds.MindDataset(str(path), columns_list=list(columns), shuffle=False)
    return [{k: np.asarray(v) for k, v in row.items()}
            for row in dataset.create_dict_iterator(num_epochs=1, output_numpy=True)]


def read_mindrecord_arrays(path) -> tuple[np.ndarray, np.ndarray]:
    """(input_ids, labels) as int32 [rows, width]; what training steps over.

    Raises PipelineError naming the file: missing, not a MindRecord with both columns,
    no rows, or rows of different lengths.
    """
    try:
        records = read_mindrecord(path)
    except RuntimeError as exc:
        raise PipelineError(f"cannot read as MindRecord with input_ids/labels columns "
                            f"({str(exc).splitlines()[0][:200]})", path) from None
    if not records:
        raise PipelineError("MindRecord holds no rows", path)
    ids = [r["input_ids"].astype(np.int32) for r in records]
    labels = [r["labels"].astype(np.int32) for r in records]
    widths = {len(a) for a in ids} | {len(b) for b in labels}
    if len(widths) != 1:
        raise PipelineError(f"rows have different lengths {sorted(widths)[:5]}; "
                            "training needs a fixed seq_length", path)
    return np.stack(ids), np.stack(labels)
