"""The worked example in mappings/README.md is a valid mapping, so the docs stay true."""

from __future__ import annotations

from pathlib import Path

from engine.mapping.loader import check_folder
from engine.settings import project_path


def test_worked_example_mapping_is_valid(tmp_path: Path) -> None:
    readme = (project_path("mappings") / "README.md").read_text()
    block = readme.split("1. Create `mappings/providers/parrot.yaml`:\n\n```yaml\n", 1)[1].split("```", 1)[0]
    (tmp_path / "providers").mkdir()
    (tmp_path / "providers" / "parrot.yaml").write_text(block)
    assert check_folder(tmp_path) == []
