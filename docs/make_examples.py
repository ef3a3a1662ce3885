"""Draw the example pictures shown in the README (uses the demo classifier).

Run: .venv/bin/python docs/make_examples.py
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt

from textlens import explain, load_model, render

HERE = Path(__file__).parent
TEXT = "A gripping, beautifully acted film that never lets go."
OTHER = "The plot is thin and the jokes fall flat."


def screenshot(page_file: Path, png: Path) -> None:
    """The HTML page as headless Chromium draws it (Debian's chromium)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1100, "height": 700})
        page.goto(page_file.resolve().as_uri())
        page.screenshot(path=str(png), full_page=True)
        browser.close()


def serve_screenshot(png: Path) -> None:
    """The local page of `textlens serve` after one explanation, in headless Chromium."""
    import shutil
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    from playwright.sync_api import sync_playwright

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    exe = shutil.which("textlens") or str(Path(sys.executable).parent / "textlens")
    server = subprocess.Popen([exe, "serve", "--port", str(port)], stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(url + "api/model", timeout=1)
                break
            except OSError:
                time.sleep(0.5)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            page.goto(url)
            page.wait_for_selector("#method option[value='layer-conductance']", state="attached")
            page.fill("#text", TEXT)
            page.select_option("#method", "layer-conductance")
            page.check("#words")
            page.click("#run")
            page.wait_for_selector("#heatmap img", timeout=120_000)
            page.screenshot(path=str(png), full_page=True)
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> None:
    model = load_model()
    ig = explain(TEXT, model, "integrated-gradients")
    ig_other = explain(OTHER, model, "integrated-gradients")
    info = explain(TEXT, model, "information-loss")
    info_other = explain(OTHER, model, "information-loss")
    cond = explain(TEXT, model, "layer-conductance", keep_units=True)
    parts = explain(TEXT, model, "embedding-integrated-gradients")

    render.save_html(
        [ig, ig_other, info.to_words(), cond.to_words()],
        HERE / "example.html",
        title="textlens: integrated gradients, information loss and layer conductance",
    )
    figures = [
        render.heatmap([info, info_other], HERE / "heatmap-information.png"),
        render.heatmap(cond, HERE / "heatmap-conductance.png", show_special=True),
        render.layer_boxplot(cond, "beautifully", HERE / "boxplot-conductance.png"),
        render.layer_entropy(cond, "beautifully", HERE / "entropy-conductance.png"),
    ]
    for fig in figures:
        plt.close(fig)
    (HERE / "subembeddings.md").write_text(render.subembedding_table(parts, k=5))
    screenshot(HERE / "example.html", HERE / "example-page.png")
    serve_screenshot(HERE / "serve.png")
    print("wrote", ", ".join(sorted(p.name for p in HERE.iterdir() if p.suffix != ".py")))


if __name__ == "__main__":
    main()
