"""Rows packed into fixed-width sequences, each row attending only to itself.

A training row of the `signs` recipe measured in docs/experiments.md section 8 was 38-85
tokens (mean 69) in a 97-column record: 29% of every step was padding. Packing puts
several rows end to end in one sequence of `width` columns; `segments` numbers each
column's row (1, 2, ...; 0 for the padding after the last row), and `attention_mask` lets
a token see only earlier tokens of its own row. Rotary embeddings depend only on the
distance between two positions, so a row packed at offset 40 computes exactly what it
computes alone at offset 0: the loss and gradients of a packed batch are those of the same
rows unpacked (tests/integration/test_packing_train.py checks it on a real MindFormers
Llama).

The boundary needs no special label: a row's first label is a prompt position (ignored),
so the last token of one row is never trained to predict the next row's first token.

    seq_ids, seq_labels, segments = pack_rows(ids, labels, width, order)
    mask = attention_mask(segments[:, :-1])   # the model sees width - 1 tokens
"""
from __future__ import annotations

import numpy as np

from pipeline.data.mindrecord import IGNORE_ID

OPEN_BINS = 64    # first-fit looks at this many newest unfilled sequences: near-optimal fill,
                  # linear time over 59,500 rows
MASKED = -10000.0  # MindFormers' additive attention mask value (LowerTriangularMaskWithDynamic)


def row_lengths(ids: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Columns each record uses: up to its last non-pad token or label (pad id 0)."""
    used = (ids != 0) | (labels != IGNORE_ID)
    last = used.shape[1] - np.argmax(used[:, ::-1], axis=1)
    return np.where(used.any(axis=1), last, 0).astype(np.int64)


def pack_rows(ids: np.ndarray, labels: np.ndarray, width: int, order: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pack rows (taken in `order`) into sequences of `width` columns by first fit over the
    newest OPEN_BINS sequences. Returns (ids, labels, segments), each [sequences, width];
    sequences appear in the order they were opened, so the data order stays `order`'s.
    A row longer than `width` is an error (fit_width drops those before)."""
    lengths = row_lengths(ids, labels)
    if lengths.max(initial=0) > width:
        raise ValueError(f"a row of {int(lengths.max())} tokens does not fit width {width}")
    bins: list[list[int]] = []      # row indices per sequence
    room: list[int] = []
    open_bins: list[int] = []       # indices into bins, oldest first
    for row in order:
        n = int(lengths[row])
        if n == 0:
            continue
        for pos, b in enumerate(open_bins):
            if room[b] >= n:
                bins[b].append(int(row))
                room[b] -= n
                if room[b] == 0:
                    open_bins.pop(pos)
                break
        else:
            bins.append([int(row)])
            room.append(width - n)
            open_bins.append(len(bins) - 1)
            if len(open_bins) > OPEN_BINS:
                open_bins.pop(0)
    out_ids = np.zeros((len(bins), width), ids.dtype)
    out_labels = np.full((len(bins), width), IGNORE_ID, labels.dtype)
    segments = np.zeros((len(bins), width), np.int32)
    for s, members in enumerate(bins):
        at = 0
        for seg, row in enumerate(members, start=1):
            n = int(lengths[row])
            out_ids[s, at:at + n] = ids[row, :n]
            out_labels[s, at:at + n] = labels[row, :n]
            segments[s, at:at + n] = seg
            at += n
    return out_ids, out_labels, segments


def attention_mask(segments: np.ndarray) -> np.ndarray:
    """Additive mask [batch, 1, seq, seq] (float32): 0 where query i may see key j (same
    row, j <= i), MASKED elsewhere. Padding (segment 0) sees earlier padding only; it
    carries no label, and a row with some visible key never yields NaN."""
    same = segments[:, :, None] == segments[:, None, :]
    causal = np.tril(np.ones((segments.shape[1],) * 2, bool))
    return np.where(same & causal, 0.0, MASKED).astype(np.float32)[:, None]


def packing_stats(segments: np.ndarray) -> dict:
    """What the manifest and log say about a packing: sequences, rows, fill."""
    rows = int(segments.max(axis=1).sum()) if segments.size else 0
    return {"sequences": int(segments.shape[0]), "rows": rows,
            "rows_per_sequence": round(rows / max(segments.shape[0], 1), 2),
            "fill": round(float((segments > 0).mean()) if segments.size else 0.0, 3)}
