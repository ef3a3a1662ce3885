"""Occlusion: a manual leave-one-out."""

import numpy as np
import pytest

from conftest import SENTENCES
from textlens import explain


def test_occlusion_matches_a_manual_leave_one_out(tiny_bert):
    import torch

    exp = explain(SENTENCES[0], tiny_bert, "occlusion")
    batch = tiny_bert.encode([SENTENCES[0]])
    k = int(np.argmax(np.abs(exp.scores)))
    ids = batch.input_ids.clone()
    ids[0, k] = tiny_bert.tokenizer.mask_token_id
    with torch.no_grad():
        clean = tiny_bert.model(input_ids=batch.input_ids).logits[0, exp.target.index]
        occluded = tiny_bert.model(input_ids=ids).logits[0, exp.target.index]
    assert exp.scores[k] == pytest.approx(float(clean - occluded), abs=1e-5)
    assert all(exp.scores[i] == 0 for i, s in enumerate(exp.special) if s)
