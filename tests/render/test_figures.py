"""Figures: heatmaps as PNG / SVG, sub-embedding tables, per-layer box plots and entropy."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from textlens.render import (
    attribution_entropy,
    heatmap,
    layer_boxplot,
    layer_entropy,
    subembedding_table,
    subembedding_top,
)


def _png(path):
    import matplotlib.image as mpimg

    return mpimg.imread(path)


def test_heatmap_png_is_drawn(tmp_path, layered):
    fig = heatmap(layered, tmp_path / "h.png")
    image = _png(tmp_path / "h.png")
    assert image.shape[0] > 200 and image.shape[1] > 400
    assert image[..., :3].std() > 0.05  # not one flat colour
    assert "information-loss" in fig._suptitle.get_text()


def test_heatmap_svg(tmp_path, layered, flat):
    heatmap([layered, flat], tmp_path / "h.svg")
    svg = (tmp_path / "h.svg").read_text()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg


def test_sixty_tokens_fit(tmp_path, layered):
    n = 60
    long = dataclasses.replace(
        layered,
        text=" ".join(["word"] * n),
        tokens=["word"] * n,
        offsets=[(5 * i, 5 * i + 4) for i in range(n)],
        special=[False] * n,
        scores=np.random.default_rng(1).random((4, n)),
    )
    fig = heatmap(long, tmp_path / "long.png")
    width = fig.get_size_inches()[0]
    assert width / n >= 0.3  # about a third of an inch per token label
    assert len(fig.axes[0].get_xticklabels()) == n


def test_shared_scale_is_shared(layered):
    double = dataclasses.replace(layered, scores=layered.scores * 2)
    fig = heatmap([layered, double], shared=True)
    limits = {im.get_clim() for ax in fig.axes for im in ax.get_images()}
    assert len(limits) == 1
    fig = heatmap([layered, double], shared=False)
    limits = {im.get_clim() for ax in fig.axes for im in ax.get_images()}
    assert len(limits) == 2


def test_bad_suffix(tmp_path, layered):
    with pytest.raises(ValueError, match=r"\.png or \.svg"):
        heatmap(layered, tmp_path / "h.gif")


def test_subembedding_top_and_table(flat):
    parts = {
        "word": np.linspace(0, 1, len(flat)),
        "position": np.linspace(1, 0, len(flat)),
        "token_type": np.zeros(len(flat)),
    }
    exp = dataclasses.replace(flat, extras=parts, parts=tuple(parts))
    top = subembedding_top(exp, k=2)
    assert top["word"][0][0] == "more"  # the last real token (the [SEP] is left out)
    assert top["position"][0][0] == "a"
    table = subembedding_table(exp, k=2)
    assert table.splitlines()[0].startswith("| rank | word token")
    assert len(table.splitlines()) == 4
    with pytest.raises(ValueError, match="embedding-integrated-gradients"):
        subembedding_top(flat)


def _with_units(layered):
    rng = np.random.default_rng(0)
    units = rng.normal(0, 1, (4, 16, len(layered))) * np.arange(1, 5)[:, None, None]
    return dataclasses.replace(
        layered,
        extras={"unit_scores": units},
        extra_axes={"unit_scores": ("layer", "unit", "token")},
    )


def test_layer_boxplot(tmp_path, layered):
    exp = _with_units(layered)
    fig = layer_boxplot(exp, "good", tmp_path / "b.png")
    assert "good" in fig.axes[0].get_title()
    assert _png(tmp_path / "b.png")[..., :3].std() > 0.02
    with pytest.raises(ValueError, match="keep_units=True"):
        layer_boxplot(layered, "good")
    with pytest.raises(ValueError, match="not in this explanation"):
        layer_boxplot(exp, "bad")


def test_entropy_known_answers(layered):
    assert attribution_entropy(np.arange(20.0), bins=20) == pytest.approx(np.log(20))
    assert attribution_entropy(np.ones(5)) == pytest.approx(0.0, abs=1e-12)
    fig = layer_entropy(_with_units(layered), token=3)
    assert fig.entropy.shape == (4,) and (fig.entropy > 0).all()
    fig = layer_entropy(layered)
    np.testing.assert_allclose(fig.total, layered.scores[:, 1:5].sum(axis=1))
