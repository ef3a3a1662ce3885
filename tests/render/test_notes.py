"""Notes beside a picture: zero rows, layer totals that differ, the baseline's prediction."""

import numpy as np

from textlens.explanation import Explanation, TargetInfo
from textlens.render import heatmap, render_html
from textlens.render.notes import baseline_note, layer_notes


def _layered(method, scores, **extras):
    """A layered Explanation as ``from_scores`` makes it for ``method`` (its layer totals)."""
    from textlens.methods import METHODS
    from textlens.methods.base import describe

    tokens = ("[CLS]", "a", "film", "[SEP]")
    return Explanation(
        layer_totals=describe(METHODS[method], "layer_totals"),
        text="a film",
        tokens=tokens,
        offsets=((0, 0), (0, 1), (2, 6), (0, 0)),
        special=(True, False, False, True),
        scores=np.array(scores, dtype=float),
        axes=("layer", "token"),
        layers=(1, 2, 3),
        method=method,
        target=TargetInfo(kind="class-logit", label="fresh", index=1, score=2.0),
        params={"baseline": "pad"},
        extras={k: np.array(v) for k, v in extras.items()},
    )


ROWS = [[0.1, 0.5, 0.4, 0.0], [0.3, 0.6, 0.9, 0.0], [1.0, 0.0, 0.0, 0.0]]


def test_a_zero_row_and_differing_totals_are_explained():
    exp = _layered("layer-conductance", ROWS, baseline_score=1.0)
    notes = layer_notes(exp)
    assert notes[0].startswith("layer 3: zero for every word")
    assert "layer totals run from 1 to 1.8" in notes[1] and "= 1" in notes[1]
    assert "more steps" in notes[1]


def test_agreeing_totals_and_methods_without_a_promise_get_no_totals_note():
    agree = [[0.5, 0.25, 0.25, 0.0], [0.2, 0.4, 0.4, 0.0], [0.0, 0.6, 0.4, 0.0]]
    assert layer_notes(_layered("layer-conductance", agree)) == []
    notes = layer_notes(_layered("attention", ROWS))
    assert len(notes) == 1 and notes[0].startswith("layer 3: zero")
    # with special tokens shown, the [CLS] column makes row 3 not zero
    assert all("zero" not in n for n in layer_notes(_layered("attention", ROWS), True))


def test_pictures_and_pages_carry_the_notes():
    exp = _layered("layer-conductance", ROWS, baseline_score=1.0)
    figure = heatmap(exp)
    assert "layer 3: zero for every word" in figure.axes[0].get_title(loc="left")
    assert "layer totals run from" in render_html(exp)


def test_baseline_note_names_the_predicted_class():
    exp = _layered(
        "layer-conductance",
        ROWS,
        baseline_score=1.0,
        baseline_probability=0.9,
        baseline_predicted=1.0,
        baseline_predicted_probability=0.9,
        baseline_uniform=0.5,
        baseline_favours=1.0,
    )
    exp = Explanation(**{**exp.__dict__, "target": TargetInfo(
        kind="class-logit", label="fresh", index=1, score=2.0,
        probabilities={"rotten": 0.1, "fresh": 0.9})})  # fmt: skip
    note = baseline_note(exp)
    assert note.startswith("baseline 'pad' predicts fresh (p=0.900)")
    assert note.endswith("try another baseline")
