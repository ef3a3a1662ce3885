"""HTML: golden page, escaping, colours, layers and the notebook hook."""

from __future__ import annotations

import re

from tests.render.conftest import make_flat, make_layered

from textlens.render import render_html, save_html


def test_page_matches_golden_file(golden):
    golden("page.html", render_html([make_flat(), make_layered()], title="golden"))


def test_markup_in_the_text_renders_as_text(flat):
    page = render_html(flat)
    body = re.search(r'<div class="tl-text">(.*?)</div>', page).group(1)
    assert "<b>" not in body and "</b>" not in body
    assert "&lt;" in body and "&gt;" in body and "&quot;" in body and "&amp;" in body
    assert "<script" not in page


def test_script_tag_is_escaped_everywhere(flat):
    import dataclasses

    from textlens.explanation import TargetInfo

    evil = dataclasses.replace(
        flat,
        model="<script>alert(1)</script>",
        target=TargetInfo(kind="class", label='"><script>x</script>'),
    )
    page = render_html(evil, title="<script>t</script>")
    assert "<script" not in page
    assert page.count("&lt;script&gt;") >= 3


def test_tokens_carry_exact_values_and_colours(flat):
    page = render_html(flat)
    spans = re.findall(r'<span class="tl-tok" data-score="([^"]+)" title="([^"]+)"', page)
    # 10 real tokens; the specials are hidden by default
    assert len(spans) == 10
    assert ("+0.8", "gripping: +0.8") in spans
    # strongest positive word is the deepest red, negative is blue
    colours = dict(
        re.findall(r'background-color:(#[0-9a-f]{6});color:#[0-9a-f]{6}">([^<]+)<', page)
    )
    by_word = {word: colour for colour, word in colours.items()}
    assert by_word["gripping"] == "#cb181d"  # +0.8 is the largest magnitude: full red
    red, blue = by_word["gripping"], by_word["film"]
    assert int(red[1:3], 16) > int(red[5:7], 16)
    assert int(blue[5:7], 16) > int(blue[1:3], 16)


def test_special_tokens_shown_on_request(flat):
    assert "[CLS]" not in render_html(flat)
    shown = render_html(flat, show_special=True)
    assert shown.count('class="tl-special"') == 2


def test_gaps_between_tokens_are_kept(flat):
    page = render_html(flat)
    # the untokenised "&lt;/b&gt;" and the spaces survive, so the text reads as written
    assert "&lt;/b&gt; " in page


def test_layered_rows_and_layer_selection(layered):
    page = render_html(layered)
    assert page.count('class="tl-layer"') == 4
    picked = render_html(layered, layers=[2, 4])
    assert picked.count('class="tl-layer"') == 2 and "layer 4" in picked and "layer 1" not in picked


def test_methods_compared_side_by_side_get_their_own_scales(flat, layered):
    page = render_html([flat, layered])
    assert page.count('class="tl-row"') == 2
    assert "colour scale of <b>integrated-gradients</b>" in page
    assert "colour scale of <b>information-loss</b>" in page


def test_word_level(flat):
    page = render_html(flat, words=True)
    assert "word_reduce" not in page and "words" in page


def test_notebook_hook_is_a_fragment(flat):
    fragment = flat._repr_html_()
    assert fragment.startswith('<div class="tl-root">') and "<html" not in fragment
    assert "gripping" in fragment


def test_save_html_writes_a_whole_page(tmp_path, flat):
    out = save_html(flat, tmp_path / "x.html")
    text = out.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")
    assert "http" not in text  # works offline: no external assets
    assert [p.name for p in tmp_path.iterdir()] == ["x.html"]
