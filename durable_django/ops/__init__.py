"""Operator tools: what the admin, the management commands and a deploy pipeline call.

Retry a failed run or fork one from a position (:mod:`.repair`); replay histories against
new code before a deploy (:mod:`.replay`, :mod:`.preflight`); prune finished runs
(:mod:`.prune`); print runs and their histories (:mod:`.console`).
"""
