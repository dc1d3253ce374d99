"""The one list of engine bugs the generated tests step around, each with its issue 10 finding.

The model names the compositions a case meets (``Prediction.shapes``). A case that meets a
shape listed here is not generated (``hypothesis.assume``) and not checked by ``make fuzz``
(it is counted as skipped), because the engine is known to get it wrong. Each has an
explicit ``xfail(strict=True)`` test in ``test_compositions.py`` too. When a finding is fixed,
delete its line here: the generator then covers it again, and the xfail test starts
passing, which fails it until its mark is removed.
"""

from __future__ import annotations

KNOWN: dict[str, str] = {}


def known(shapes: set[str]) -> list[str]:
    """The known bugs a case with these shapes runs into."""
    return [KNOWN[shape] for shape in sorted(shapes) if shape in KNOWN]
