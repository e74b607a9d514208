"""Row packing (pipeline.data.packing): which rows share a sequence, the segment map and
the attention mask, checked by hand."""
import numpy as np
import pytest

from pipeline.data.packing import MASKED, attention_mask, pack_rows, packing_stats, row_lengths

IGN = -100


def rows(lengths, width=10, prompt=1):
    """Records of the given token counts (token ids row*10 + position + 1), the first
    `prompt` tokens unlabelled, right-padded with id 0 / label -100."""
    ids = np.zeros((len(lengths), width), np.int32)
    labels = np.full((len(lengths), width), IGN, np.int32)
    for r, n in enumerate(lengths):
        ids[r, :n] = r * 10 + np.arange(n) + 1
        labels[r, prompt:n] = ids[r, prompt:n]
    return ids, labels


def test_row_lengths_count_up_to_the_last_token_or_label():
    ids, labels = rows([3, 5, 0])
    assert row_lengths(ids, labels).tolist() == [3, 5, 0]
    ids[0, 1] = 0                      # a pad id inside a row does not shorten it
    assert row_lengths(ids, labels)[0] == 3


def test_first_fit_packs_by_hand():
    ids, labels = rows([3, 5, 2, 4])
    out_ids, out_labels, seg = pack_rows(ids, labels, 8, np.arange(4))
    # row 0 (3) opens sequence 0; row 1 (5) fills it; row 2 (2) opens 1; row 3 (4) joins it
    assert seg.tolist() == [[1, 1, 1, 2, 2, 2, 2, 2], [1, 1, 2, 2, 2, 2, 0, 0]]
    assert out_ids[0].tolist() == [1, 2, 3, 11, 12, 13, 14, 15]
    assert out_ids[1].tolist() == [21, 22, 31, 32, 33, 34, 0, 0]
    assert out_labels[0].tolist() == [IGN, 2, 3, IGN, 12, 13, 14, 15]   # each row keeps its prompt mask
    assert out_labels[1].tolist() == [IGN, 22, IGN, 32, 33, 34, IGN, IGN]


def test_the_order_decides_and_every_row_lands_once():
    rng = np.random.default_rng(3)
    lengths = rng.integers(2, 9, 200)
    ids, labels = rows(lengths, width=9)
    order = rng.permutation(200)
    out_ids, out_labels, seg = pack_rows(ids, labels, 9, order)
    found = []
    for s in range(len(seg)):
        for k in range(1, seg[s].max() + 1):
            toks = out_ids[s][seg[s] == k]
            found.append(int(toks[0] // 10))          # the row's id from its first token
            assert toks.tolist() == ids[found[-1], :lengths[found[-1]]].tolist()
    assert sorted(found) == list(range(200))
    assert found[0] == order[0]                       # the first row opens the first sequence
    first_seq = [s for s in range(len(seg)) for k in range(1, seg[s].max() + 1)]
    assert first_seq[found.index(int(order[-1]))] >= len(seg) - 64   # late rows join late sequences
    stats = packing_stats(seg)
    assert stats["rows"] == 200 and stats["sequences"] == len(seg)
    assert stats["fill"] == pytest.approx(lengths.sum() / (len(seg) * 9), abs=1e-3)
    assert stats["fill"] > 0.9                        # first fit leaves little room


def test_a_row_wider_than_the_sequence_is_refused():
    ids, labels = rows([9])
    with pytest.raises(ValueError, match="9 tokens"):
        pack_rows(ids, labels, 8, np.arange(1))


def test_attention_mask_keeps_each_row_to_itself():
    mask = attention_mask(np.array([[1, 1, 2, 2, 0]]))
    assert mask.shape == (1, 1, 5, 5) and mask.dtype == np.float32
    seen = (mask[0, 0] == 0).astype(int)
    assert seen.tolist() == [[1, 0, 0, 0, 0],
                             [1, 1, 0, 0, 0],
                             [0, 0, 1, 0, 0],
                             [0, 0, 1, 1, 0],
                             [0, 0, 0, 0, 1]]
    assert set(np.unique(mask)) == {0.0, MASKED}
