"""`vaekit sample --format folder` is the image and speech plugins' class-folder layout: text refuses it in one line."""

from __future__ import annotations

import pytest
from text_fixtures import train_tiny_run

from vaekit.cli import main


def test_format_folder_is_one_line_for_text(tmp_path, capsys):
    run = train_tiny_run(tmp_path)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        main(["sample", str(run), "--per-class", "3", "--format", "folder", "--out", str(tmp_path / "s")])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and len(err.strip().splitlines()) == 1
    assert err.startswith("vaekit sample: error: ") and "--format" in err
    assert not (tmp_path / "s").exists()
