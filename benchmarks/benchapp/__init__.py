"""The benchmark's Django app: one table to insert into, the workflows and the Celery tasks."""
