"""The worked example in mappings/README.md is a valid mapping, so the docs stay true."""

from __future__ import annotations

from pathlib import Path

from engine.canonical import OPERATIONS
from engine.mapping.checks import check_mappings
from engine.settings import project_path


def test_worked_example_mapping_is_valid(tmp_path: Path) -> None:
    readme = (project_path("mappings") / "README.md").read_text()
    block = readme.split("1. Create `mappings/providers/parrot.yaml`:\n\n```yaml\n", 1)[1].split("```", 1)[0]
    (tmp_path / "providers").mkdir()
    (tmp_path / "providers" / "parrot.yaml").write_text(block)
    report = check_mappings(tmp_path)
    assert report.lines() == []


def test_the_canonical_parameter_table_is_engine_canonical() -> None:
    readme = (project_path("mappings") / "README.md").read_text()
    table = readme.split("### Canonical parameters\n", 1)[1].split("\n\n", 2)[1]
    rows = [line.split(" | ") for line in table.splitlines()[2:]]
    documented = {op.strip("| `"): {p.strip(" `|") for p in params.split(", ")} for op, params in rows}
    assert documented == {name: set(kind.parameters) for name, kind in OPERATIONS.items()}


def _yaml_block_after(readme: str, marker: str) -> str:
    return readme.split(marker, 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]


def test_overlay_example_extends_the_anthropic_mapping_as_it_says(tmp_path: Path) -> None:
    import shutil

    from engine.mapping.loader import load_registry

    readme = (project_path("mappings") / "README.md").read_text()
    block = _yaml_block_after(readme, "So an overlay changes one field, one case or one binding")
    shutil.copytree(project_path("mappings") / "providers", tmp_path / "providers")
    (tmp_path / "providers" / "my_anthropic.yaml").write_text(block)
    chat = load_registry(tmp_path).providers["my_anthropic"].operations["chat"]
    request = {
        "messages": [{"role": "user", "content": "hi"}],
        "service_tier": "auto",
        "metadata": {"tag": "x"},
    }
    deployment = {"model": "claude"}
    sent = chat.request(request, deployment)
    assert "service_tier" not in sent and sent["metadata"] == {"tag": "x"}
    assert sent["max_tokens"] == 4096 and sent["messages"] == [{"role": "user", "content": "hi"}]
    answer = chat.response(
        {"content": [{"type": "text", "text": "ok"}], "stop_reason": "guard_blocked"}, {}, deployment
    )
    assert answer["choices"][0]["finish_reason"] == "content_filter"
