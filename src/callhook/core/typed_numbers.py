"""Numbers a person typed (a dashboard form, a CLI option taken as text): ASCII digits only.

Python's ``int()`` and ``float()`` take far more than digits: other scripts' digits (``"٣"``,
full-width ``"６０"``), underscores (``"1_000"``), a sign, and for ``float`` ``"nan"`` and
``"inf"``. The API (JSON) takes none of them, so the dashboard and the CLI stored values the API
refuses (issue 14's review). Here only ASCII digits (and for a decimal one point) count;
surrounding whitespace is ignored. Exponents are refused too: no field here needs them.
"""

from __future__ import annotations

import re
from typing import Final

#: Longer than any value a field here takes (and within ``int()``'s 4,300-digit limit).
_MAX_DIGITS: Final = 30
_WHOLE: Final = re.compile(r"[0-9]+")
_DECIMAL: Final = re.compile(r"[0-9]+(?:\.[0-9]*)?|\.[0-9]+")


def whole_number(text: str) -> int | None:
    """``text`` as a non-negative whole number (ASCII digits only), else None."""
    stripped = text.strip()
    if len(stripped) > _MAX_DIGITS or not _WHOLE.fullmatch(stripped):
        return None
    return int(stripped)


def decimal_number(text: str) -> float | None:
    """``text`` as a non-negative decimal number (ASCII digits and one ``.``), else None."""
    stripped = text.strip()
    if len(stripped) > _MAX_DIGITS or not _DECIMAL.fullmatch(stripped):
        return None
    return float(stripped)
