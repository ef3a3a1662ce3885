"""The HTML page as a browser draws it: headless Chromium, a screenshot, coloured spans."""

from __future__ import annotations

import numpy as np
import pytest

from textlens.render import save_html


@pytest.fixture
def browser(chromium):
    return chromium


def test_page_draws_coloured_tokens(tmp_path, browser, flat, layered):
    page_file = save_html([flat, layered], tmp_path / "page.html")
    page = browser.new_page(viewport={"width": 1000, "height": 600})
    page.goto(page_file.as_uri())
    shot = tmp_path / "page.png"
    page.screenshot(path=str(shot), full_page=True)

    spans = page.locator("span.tl-tok")
    assert spans.count() == 10 + 4 * 4
    colour = spans.filter(has_text="gripping").first.evaluate(
        "el => getComputedStyle(el).backgroundColor"
    )
    assert colour == "rgb(203, 24, 29)"
    assert (
        page.locator("span.tl-tok", has_text="film")
        .first.evaluate("el => getComputedStyle(el).backgroundColor")
        .startswith("rgb(")
    )
    tip = spans.filter(has_text="gripping").first.get_attribute("title")
    assert tip == "gripping: +0.8"
    assert page.evaluate("() => document.querySelectorAll('script').length") == 0

    import matplotlib.image as mpimg

    pixels = mpimg.imread(shot)[..., :3]
    assert pixels.shape[0] >= 400 and pixels.shape[1] == 1000
    assert pixels.std() > 0.05  # not blank
    red = (pixels[..., 0] > 0.7) & (pixels[..., 1] < 0.2) & (pixels[..., 2] < 0.2)
    assert red.sum() > 100  # the deep-red span is on screen
    page.close()


def test_fragment_draws_inside_a_notebook_like_page(tmp_path, browser, flat):
    html = f"<html><body><p>cell output:</p>{flat._repr_html_()}</body></html>"
    (tmp_path / "nb.html").write_text(html, encoding="utf-8")
    page = browser.new_page()
    page.goto((tmp_path / "nb.html").as_uri())
    widths = page.locator("span.tl-tok").evaluate_all(
        "els => els.map(e => e.getBoundingClientRect().width)"
    )
    assert len(widths) == 10 and np.min(widths) > 0
    page.close()
