"""Generated-program conformance: random workflow programs, run by the real engine and by a reference model.

- :mod:`.program`: programs as JSON data (the statements, the retry policies they name).
- :mod:`.walker`: what a program means: a generator that walks it and yields requests, for
  any vocabulary of requests (the engine's, or the model's).
- :mod:`.workflows`: the one registered workflow that runs any program, and its steps.
- :mod:`.model`: the reference model, written from the documented semantics, sharing no
  code with ``durable_django.core``.
- :mod:`.generate`: random programs and event schedules (for Hypothesis and for ``make fuzz``).
- :mod:`.inline`: drives the real system in-process (``durable_django.testing``).
- :mod:`.fuzz`: drives it with a real Celery worker that is SIGKILLed at random (``make fuzz``).
"""
