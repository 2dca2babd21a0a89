"""Service names as a user types them: matched to the names the API uses, or suggested.

Pure functions, shared by every command that takes a service name (`services --service`,
`status --service`, `track`), so they all accept and suggest alike.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence

from cli_devops.errors import UsageError
from cli_devops.model import Instance
from cli_devops.text import terminal_safe

MAX_SUGGESTIONS = 3
MAX_LISTED = 20


def services_of(instances: Iterable[Instance]) -> set[str]:
    """The service names present (instances that could not be read at all have none)."""
    return {instance.service for instance in instances if instance.service is not None}


def resolve_service(name: str, known: Iterable[str]) -> str:
    """The service as the API spells it; a case-insensitive match is accepted when unique.

    Raises UsageError otherwise, suggesting the names that contain what was typed (any case),
    or failing that the closest spellings, or failing that the names there are.
    """
    names = sorted(set(known))
    spelled = as_spelled(name, names)
    if spelled is not None:
        return spelled
    close = suggestions(name, names)
    if close:
        hint = f"; did you mean {' or '.join(map(terminal_safe, close))}?"
    elif names:
        hint = f"; known services: {', '.join(map(terminal_safe, names[:MAX_LISTED]))}"
    else:
        hint = "; no service was read"
    raise UsageError(f"no service named {terminal_safe(name)!r}{hint}")


def suggestions(name: str, names: Iterable[str]) -> list[str]:
    """Names that start with or contain `name` (case-insensitive), else names it abbreviates
    (`usr` for UserService: same first letter, the rest in order), else the closest spellings."""
    names = sorted(set(names))
    wanted = name.strip().lower()
    if wanted:
        prefixed = [known for known in names if known.lower().startswith(wanted)]
        if prefixed:
            return prefixed[:MAX_SUGGESTIONS]
        containing = [known for known in names if wanted in known.lower()]
        if containing:
            return containing[:MAX_SUGGESTIONS]
        abbreviating = [known for known in names if _abbreviates(wanted, known.lower())]
        if abbreviating:
            return abbreviating[:MAX_SUGGESTIONS]
    by_folded = {known.lower(): known for known in names}
    close = difflib.get_close_matches(wanted, list(by_folded), n=MAX_SUGGESTIONS, cutoff=0.75)
    return [by_folded[folded] for folded in close]


def _abbreviates(short: str, name: str) -> bool:
    if len(short) < 2 or short[0] != name[0]:
        return False
    rest = iter(name[1:])
    return all(char in rest for char in short[1:])


def match_service(name: str, known: Iterable[str], *, suggest: bool = True) -> str | None:
    """The service as the API spells it, or None when `name` is no misspelling of a known
    service (it may be one a deploy is still creating); with `suggest`, raises UsageError with
    a did-you-mean when it is one (`misspellings`). For the commands that wait for a service to
    appear: they suggest at their first read only, as a service that appears later with a
    similar name is no misspelling."""
    names = sorted(set(known))
    spelled = as_spelled(name, names)
    if spelled is not None:
        return spelled
    close = misspellings(name, names) if suggest else []
    if close:
        hint = " or ".join(map(terminal_safe, close))
        raise UsageError(f"no service named {terminal_safe(name)!r}; did you mean {hint}?")
    return None


def misspellings(name: str, names: Iterable[str]) -> list[str]:
    """The names `name` is a slip of the keyboard for: one it begins (three characters at
    least), or one at most one edit away (two from 12 characters on; an edit is an insertion,
    deletion, substitution or swap of neighbours). A name that extends a known one
    (`UserService2`) is no slip: it is a new service. Stricter than `suggestions`, because
    services share words (`NewService` is two edits from `GeoService`, and is new)."""
    wanted = name.strip().lower()
    found = []
    for known in sorted(set(names)):
        folded = known.lower()
        if len(wanted) >= 3 and folded.startswith(wanted):
            found.append(known)
        elif not wanted.startswith(folded):
            allowed = 2 if len(folded) >= 12 else 1
            if abs(len(folded) - len(wanted)) <= allowed and _edits(wanted, folded) <= allowed:
                found.append(known)
    return found[:MAX_SUGGESTIONS]


def _edits(a: str, b: str) -> int:
    """Optimal string alignment distance: insertions, deletions, substitutions, swaps."""
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i, char in enumerate(a, 1):
        current = [i] + [0] * len(b)
        for j, other in enumerate(b, 1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char != other))
            if i > 1 and j > 1 and char == b[j - 2] and a[i - 2] == other:
                current[j] = min(current[j], previous2[j - 2] + 1)
        previous2, previous = previous, current
    return previous[-1]


def as_spelled(name: str, names: Sequence[str]) -> str | None:
    """`name` as one of `names` spells it: itself, or the one name equal to it in any case."""
    if name in names:
        return name
    folded = [known_name for known_name in names if known_name.lower() == name.lower()]
    return folded[0] if len(folded) == 1 else None
