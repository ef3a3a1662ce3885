"""Our batched engine against Captum's documented usage (its BERT tutorials), within 1e-5."""

import numpy as np
import pytest
import torch
from captum.attr import LayerConductance, LayerIntegratedGradients, Saliency

from conftest import SENTENCES
from textlens import explain_many

TOL = 1e-5


def _forward(adapter):
    def forward(input_ids, attention_mask, token_type_ids=None, position_ids=None):
        return adapter.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
            position_ids=position_ids,
        ).logits

    return forward


def _one(adapter, text):
    batch = adapter.encode([text])
    return batch, batch.input_ids, batch.attention_mask, batch.token_type_ids


def test_integrated_gradients_equals_captum_layer_ig(tiny_bert):
    ours = explain_many(SENTENCES, tiny_bert, "integrated-gradients", n_steps=50)
    lig = LayerIntegratedGradients(_forward(tiny_bert), tiny_bert.word_embeddings)
    for text, exp in zip(SENTENCES, ours, strict=True):
        batch, ids, mask, types = _one(tiny_bert, text)
        ref = tiny_bert.baseline_ids(batch)
        attr, delta = lig.attribute(
            inputs=ids,
            baselines=ref,
            additional_forward_args=(mask, types),
            target=exp.target.index,
            n_steps=50,
            return_convergence_delta=True,
        )
        theirs = attr.sum(dim=-1)[0].detach().numpy()
        np.testing.assert_allclose(exp.scores, theirs, atol=TOL, rtol=0)
        assert float(exp.extras["convergence_delta"]) == pytest.approx(float(delta), abs=TOL)


def test_embedding_ig_equals_captum_multi_layer_ig(tiny_bert):
    ours = explain_many(SENTENCES[:2], tiny_bert, "embedding-integrated-gradients", n_steps=50)
    base = tiny_bert.model.bert.embeddings
    lig = LayerIntegratedGradients(
        _forward(tiny_bert),
        [base.word_embeddings, base.token_type_embeddings, base.position_embeddings],
    )

    def forward(ids, types, positions, mask):
        return _forward(tiny_bert)(ids, mask, types, positions)

    lig.forward_func = forward
    for text, exp in zip(SENTENCES[:2], ours, strict=True):
        batch, ids, mask, types = _one(tiny_bert, text)
        positions = torch.arange(ids.shape[1]).unsqueeze(0)
        attrs = lig.attribute(
            inputs=(ids, types, positions),
            baselines=(
                tiny_bert.baseline_ids(batch),
                torch.zeros_like(types),
                torch.zeros_like(positions),
            ),
            additional_forward_args=(mask,),
            target=exp.target.index,
            n_steps=50,
        )
        for name, attr in zip(("word", "token_type", "position"), attrs, strict=True):
            theirs = attr.sum(dim=-1)[0].detach().numpy()
            np.testing.assert_allclose(exp.extras[name], theirs, atol=TOL, rtol=0, err_msg=name)


def test_layer_conductance_equals_captum_per_layer(tiny_bert):
    exp = explain_many(SENTENCES[2:], tiny_bert, "layer-conductance", n_steps=50)[0]
    batch, _, mask, types = _one(tiny_bert, SENTENCES[2])
    embeds = tiny_bert.embed(batch).detach()
    ref = tiny_bert.embed(batch, tiny_bert.baseline_ids(batch)).detach()

    def forward(inputs_embeds, attention_mask, token_type_ids):
        return tiny_bert.model(
            inputs_embeds=inputs_embeds,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
        ).logits

    for row, layer in enumerate(exp.layers):
        module = tiny_bert.model.bert.encoder.layer[layer - 1]
        attr = LayerConductance(forward, module).attribute(
            inputs=embeds,
            baselines=ref,
            additional_forward_args=(mask, types),
            target=exp.target.index,
            n_steps=50,
        )
        attr = attr[0] if isinstance(attr, tuple) else attr
        theirs = attr.sum(dim=-1)[0].detach().numpy()
        np.testing.assert_allclose(
            exp.scores[row], theirs, atol=TOL, rtol=0, err_msg=f"layer {layer}"
        )


def test_gradient_equals_captum_saliency_norm(tiny_bert):
    exp = explain_many(SENTENCES[:1], tiny_bert, "gradient")[0]
    batch, _, mask, types = _one(tiny_bert, SENTENCES[0])
    embeds = tiny_bert.embed(batch).detach()

    def forward(inputs_embeds):
        return tiny_bert.model(
            inputs_embeds=inputs_embeds, attention_mask=mask, token_type_ids=types
        ).logits

    grads = Saliency(forward).attribute(embeds, target=exp.target.index, abs=False)
    np.testing.assert_allclose(exp.scores, grads.norm(dim=-1)[0].numpy(), atol=TOL, rtol=0)
