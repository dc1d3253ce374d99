"""Code the tests share with the benchmarks, the chaos harness and the demo, none of it a test.

``processes``: Celery worker process trees started, killed and stopped by pid.
"""
