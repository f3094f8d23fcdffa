"""A hand-built provider catalog for tests of config parsing and import that should not load mappings."""

from __future__ import annotations

from engine.config.catalog import ProviderCatalog, ProviderDefaults

__all__ = ["TEST_CATALOG"]

TEST_CATALOG = ProviderCatalog(
    providers={
        "ollama": ProviderDefaults("ollama", "local", "http://localhost:11434", ("ollama", "ollama_chat")),
        "openai": ProviderDefaults(
            "openai",
            "third-party",
            "https://api.openai.com/v1",
            ("openai", "hosted_vllm", "lm_studio", "llamafile"),
        ),
    },
    default_provider="openai",
)
