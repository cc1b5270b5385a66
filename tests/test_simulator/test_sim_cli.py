"""`python -m simulator build|advance` drive the API and print a short summary."""

from __future__ import annotations

import pytest

from simulator.__main__ import main


def test_build_then_advance(tmp_path, capsys):
    out = tmp_path / "data"
    main(["build", "--customers", "300", "--days", "20", "--seed", "3", "--out", str(out)])
    printed = capsys.readouterr().out
    assert "as of 2025-01-20" in printed and "order_items" in printed
    assert (out / "ordering.sqlite").is_file() and (out / "truth.json").is_file()
    main(["advance", "--days", "2", "--out", str(out)])
    printed = capsys.readouterr().out
    assert "as of 2025-01-22" in printed and "(+" in printed


def test_advance_without_a_world_exits_with_a_message(tmp_path):
    with pytest.raises(SystemExit, match="no simulated world"):
        main(["advance", "--out", str(tmp_path)])
