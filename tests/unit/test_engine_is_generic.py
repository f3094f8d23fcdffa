"""The engine never names a provider (STYLE habit 1): provider knowledge lives in mappings/ only."""

from __future__ import annotations

import re
from pathlib import Path

from engine.mapping.loader import load_registry
from engine.settings import project_path

ENGINE = Path(__file__).resolve().parents[2] / "engine"
# well-known backends, whether or not a mapping exists for them yet
KNOWN = {
    "anthropic",
    "gemini",
    "azure",
    "mistral",
    "lmstudio",
    "vllm",
    "llamacpp",
    "llama.cpp",
    "localai",
    "openrouter",
    "groq",
    "deepseek",
    "together",
    "fireworks",
    "tgi",
    "ollama",
    "claude",
}


def _provider_words() -> set[str]:
    registry = load_registry(project_path("mappings"))
    words = set(KNOWN)
    for mapping in registry.providers.values():
        words.add(mapping.name)
        words.update(mapping.prefixes)
    words.discard("openai")  # the canonical format is OpenAI's own; its name appears in prose about it
    return {w.lower() for w in words}


def test_engine_names_no_provider() -> None:
    pattern = re.compile(r"\b(" + "|".join(re.escape(w) for w in sorted(_provider_words())) + r")\b", re.I)
    offenders = []
    for path in ENGINE.rglob("*.py"):
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if pattern.search(line):
                offenders.append(f"{path.relative_to(ENGINE.parent)}:{number}: {line.strip()}")
    assert not offenders, "provider names in engine/:\n" + "\n".join(offenders)
