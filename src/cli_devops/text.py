"""Text shown to a person: made safe for a terminal, and counted nouns spelled right.

The lowest layer of the package (it imports nothing of it), so the environment, the views and the
command-line layer can all use it without an import circle.
"""

from __future__ import annotations


def terminal_safe(text: str) -> str:
    """Drop control, format and other non-printable characters (escape sequences, bidi
    overrides, line breaks) so an API string can never move the cursor or rewrite the screen."""
    if text.isprintable():
        return text
    return "".join(char for char in text if char.isprintable())


def plural(count: int, noun: str, plural_form: str | None = None) -> str:
    """`1 instance`, `0 instances`, `2 instances` (or `plural_form` for irregular nouns)."""
    if count == 1:
        return f"{count} {noun}"
    return f"{count} {plural_form or noun + 's'}"
