"""The Python snippets of docs/python-api.md run as written, in order, in one namespace."""

import re

from conftest import ROOT


def python_blocks(page):
    return re.findall(r"```python\n(.*?)```", page.read_text(), flags=re.S)


def test_the_python_api_page_runs(tmp_path, monkeypatch, capsys):
    blocks = python_blocks(ROOT / "docs" / "python-api.md")
    assert len(blocks) >= 4
    monkeypatch.chdir(tmp_path)  # the snippets write runs/ and saved_models/ where they run
    namespace = {}
    for block in blocks:
        exec(compile(block, "docs/python-api.md", "exec"), namespace)  # noqa: S102 - the page's own code
    assert namespace["faces"].shape == (8, 16, 16, 3) and namespace["images"].shape == (4, 16, 16, 3)
    assert (tmp_path / "saved_models" / "api-demo").is_dir()
    assert "d_loss" in capsys.readouterr().out
