"""What `pgqrs.install` checks after its scripts ran: that schema pgqrs holds no function the engine's SQL
does not define (docs/security.md). The checks' queries are in `_sql.install`."""

import re
from collections import Counter

_DEFINED = re.compile(r"create\s+or\s+replace\s+function\s+pgqrs\.(\w+)\s*\(", re.IGNORECASE)


def foreign_functions(installed: list[tuple[str, str]], scripts: list[str]) -> list[str]:
    """Findings for the functions `installed` (name, signature) that the engine's `scripts` do not define."""
    defined = Counter(m[1].lower() for text in scripts for m in _DEFINED.finditer(text))
    by_name: dict[str, list[str]] = {}
    for name, signature in installed:
        by_name.setdefault(name, []).append(signature)
    findings: list[str] = []
    for name, signatures in by_name.items():
        if name not in defined:
            findings.extend(f"function {s}: not one of the engine's" for s in signatures)
        elif len(signatures) > defined[name]:
            listed = ", ".join(signatures)
            findings.append(f"functions {listed}: the engine defines {defined[name]} of that name")
    return findings
