"""docs/fidelity.md is what the golden suite's data renders today, and its cells come from that data."""

from __future__ import annotations

from pathlib import Path

from tests.golden import fidelity

ROOT = Path(__file__).parents[2]


def test_the_committed_matrix_is_not_stale() -> None:
    assert fidelity.PAGE.read_text() == fidelity.render(), (
        "docs/fidelity.md is stale: regenerate it with `make fidelity` "
        "(or `.venv/bin/python -m tests.golden.fidelity`) and commit the result"
    )


def test_rendering_is_deterministic() -> None:
    assert fidelity.render() == fidelity.render()


def _row(page: str, provider: str) -> dict[str, str]:
    lines = [line for line in page.splitlines() if line.startswith("| ")]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    row = next(line for line in lines if line.startswith(f"| **{provider}** "))
    return dict(zip(header, (cell.strip() for cell in row.strip("|").split("|")), strict=True))


def test_cells_follow_the_suites_data() -> None:
    """Spot checks against what backend.yaml files and snapshots say (not a second hand-kept table)."""
    page = fidelity.render()
    anthropic, tgi_native, mistral, tei = (
        _row(page, p) for p in ("anthropic", "tgi_native", "mistral", "tei")
    )
    assert anthropic["JSON schema"] == "400"  # backend.yaml `refused`, checked by test_golden.py
    assert anthropic["stream"] == "✅"
    assert tgi_native["tools"] == "400" and tgi_native["vision"] == "n/a"
    assert mistral["audio"] == "✅ / 400" and mistral["images"] == "400"  # audio_images.backend.yaml
    assert tei["embeddings"] == "✅" and tei["chat"] == "·"
    assert _row(page, "ollama")["Anthropic Messages in"] == "✅"


def test_the_readme_links_the_matrix() -> None:
    assert "(docs/fidelity.md)" in (ROOT / "README.md").read_text()
