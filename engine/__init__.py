"""Turnout: an OpenAI-compatible LLM gateway driven by YAML + Jinja provider mappings."""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
