"""Numbers a person typed (a dashboard form, a CLI option taken as text), read as strictly as the
API reads JSON numbers.

Python's ``int()`` and ``float()`` take far more than digits: other scripts' digits (``"٣"``,
full-width ``"６０"``), underscores (``"1_000"``), a sign, and for ``float`` ``"nan"`` and
``"inf"``. The API (JSON) takes none of them, so the dashboard and the CLI stored values the API
refuses (issue 14's review). Here only ASCII digits count; surrounding whitespace is ignored.
"""

from __future__ import annotations

import re
from typing import Final

_WHOLE: Final = re.compile(r"[0-9]+")
_DECIMAL: Final = re.compile(r"[0-9]+(?:\.[0-9]*)?|\.[0-9]+")


def whole_number(text: str) -> int | None:
    """``text`` as a non-negative whole number (ASCII digits only), else None."""
    stripped = text.strip()
    return int(stripped) if _WHOLE.fullmatch(stripped) else None


def decimal_number(text: str) -> float | None:
    """``text`` as a non-negative decimal number (ASCII digits and one ``.``), else None."""
    stripped = text.strip()
    return float(stripped) if _DECIMAL.fullmatch(stripped) else None
