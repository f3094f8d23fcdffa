"""Config files (LiteLLM's proxy format and Turnout's default alias sets) as an import format into SQL."""
