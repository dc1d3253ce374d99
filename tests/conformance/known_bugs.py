"""The one list of engine bugs the generated tests step around, each with its issue 10 finding.

The model names the compositions a case meets (``Prediction.shapes``). A case that meets a
shape listed here is not generated (``hypothesis.assume``) and not checked by ``make fuzz``
(it is counted as skipped), because the engine is known to get it wrong. Each has an
explicit ``xfail(strict=True)`` test in ``test_compositions.py`` too. When a finding is fixed,
delete its line here: the generator then covers it again, and the xfail test starts
passing, which fails it until its mark is removed.
"""

from __future__ import annotations

KNOWN: dict[str, str] = {
    # test_a_generation_that_continued_as_new_from_the_deadlines_compensation_has_no_deadline_nor_do_later_ones
    "continue-as-new-again-after-a-spent-deadline": "a passed deadline comes back two generations later",
    # test_a_child_of_a_generation_that_continued_as_new_from_the_deadlines_compensation_has_no_deadline
    "child-of-a-run-whose-deadline-is-spent": "a child inherits a deadline its parent no longer has",
    # test_continue_as_new_rejects_a_taken_update_it_did_not_answer (the lead lands "continue_as_new rejects")
    "continue-as-new-rejects-a-taken-update": "continue_as_new leaves a taken, unanswered update pending",
}


def known(shapes: set[str]) -> list[str]:
    """The known bugs a case with these shapes runs into."""
    return [KNOWN[shape] for shape in sorted(shapes) if shape in KNOWN]
