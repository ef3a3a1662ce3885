"""Export: the JSON document for many explanations, and one row per token."""

from __future__ import annotations

import csv
import dataclasses
import io
import json

import numpy as np
import pytest

from textlens.render import (
    load_json,
    render_html,
    save_csv,
    save_json,
    to_csv,
    to_dataframe,
    to_json,
)
from textlens.render.export import COLUMNS, to_records


def test_json_matches_golden_file(golden, flat, layered):
    golden("explanations.json", to_json([flat, layered]) + "\n")


@pytest.mark.parametrize("factor", [1 + 3e-7, 1 - 3e-7])
def test_golden_json_tolerates_the_last_digits(golden, flat, layered, factor):
    """Another CPU may round the last place differently: that still matches."""
    nudged = dataclasses.replace(layered, scores=layered.scores * factor)
    golden("explanations.json", to_json([flat, nudged]) + "\n")


@pytest.mark.parametrize("change", ["score", "token", "extra", "key"])
def test_golden_json_fails_on_a_real_change(golden, flat, layered, change):
    if change == "score":  # one score off by 1e-4 relative: beyond the tolerance
        scores = layered.scores.copy()
        scores[2, 3] *= 1 + 1e-4
        changed = dataclasses.replace(layered, scores=scores)
    elif change == "token":
        changed = dataclasses.replace(layered, tokens=("[CLS]", "not", "a", "bad", "film", "[SEP]"))
    elif change == "extra":
        changed = dataclasses.replace(
            layered, extras={**layered.extras, "steps": np.array([6, 7, 8, 10])}
        )
    else:
        changed = dataclasses.replace(layered, params={"rate": 0.1, "seed": 0})
    with pytest.raises(AssertionError):
        golden("explanations.json", to_json([flat, changed]) + "\n")


def test_golden_page_fails_on_a_real_change(golden, flat, layered):
    scores = flat.scores.copy()
    scores[6] = 0.81  # "gripping": its printed score and colour change
    page = render_html([dataclasses.replace(flat, scores=scores), layered], title="golden")
    with pytest.raises(AssertionError):
        golden("page.html", page)


def test_json_round_trip(tmp_path, flat, layered):
    path = save_json([flat, layered], tmp_path / "e.json")
    back = load_json(path)
    assert [e.method for e in back] == ["integrated-gradients", "information-loss"]
    np.testing.assert_array_equal(back[1].scores, layered.scores)
    np.testing.assert_allclose(back[1].extras["sigma"], layered.extras["sigma"])
    assert back[0].text == flat.text and back[0].offsets == flat.offsets


def test_single_document_loads_too(tmp_path, flat):
    (tmp_path / "one.json").write_text(flat.to_json())
    assert load_json(tmp_path / "one.json")[0].tokens == flat.tokens


def test_records_one_row_per_token_and_layer(flat, layered):
    rows = to_records([flat, layered])
    assert len(rows) == len(flat) + 4 * len(layered)
    good = [r for r in rows if r["token"] == "good"]
    assert [r["layer"] for r in good] == [1, 2, 3, 4]
    assert all(r["text_id"] == 1 and r["word"] == "good" for r in good)
    cls = rows[0]
    assert cls["special"] and cls["word_index"] == -1 and cls["layer"] is None
    # punctuation is its own word; the word column names each token's word
    assert [r["word"] for r in rows[5:8]] == ['"', "gripping", '"']


def test_csv_and_dataframe_agree(tmp_path, flat, layered):
    frame = to_dataframe([flat, layered])
    assert list(frame.columns) == list(COLUMNS)
    parsed = list(csv.DictReader(io.StringIO(to_csv([flat, layered]))))
    assert len(parsed) == len(frame)
    np.testing.assert_allclose([float(r["score"]) for r in parsed], frame["score"].to_numpy())
    assert frame["layer"].isna().sum() == len(flat)
    path = save_csv([flat], tmp_path / "t.csv")
    assert path.read_text().splitlines()[0] == ",".join(COLUMNS)


def test_strict_json_for_nan(flat):
    broken = dataclasses.replace(flat, scores=np.full(len(flat), np.nan))
    doc = json.loads(to_json(broken))
    assert doc["items"][0]["scores"][0] is None


def test_missing_folder_is_refused_and_nothing_written(tmp_path, flat):
    with pytest.raises(FileNotFoundError, match="create it first"):
        save_json(flat, tmp_path / "nope" / "e.json")
    assert list(tmp_path.iterdir()) == []


def test_written_files_get_the_usual_mode(tmp_path, flat):
    """Like a plain open(): 0666 less the umask for a new file, the old mode for a replaced one."""
    import os

    old = os.umask(0o022)
    try:
        new = save_json(flat, tmp_path / "e.json")
        assert new.stat().st_mode & 0o777 == 0o644
        new.chmod(0o640)
        save_json(flat, new)
        assert new.stat().st_mode & 0o777 == 0o640
        assert sorted(p.name for p in tmp_path.iterdir()) == ["e.json"]
    finally:
        os.umask(old)
