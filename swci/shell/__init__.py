"""The interactive SWCI prompt (prompt_toolkit): completion, highlighting, history, toolbar."""
