"""Triggers that record writes the library must never accept (PostgreSQL only).

They change nothing: each one inserts a ``chaos_shop_anomaly`` row in the writer's own
transaction, so only writes that really committed are recorded. The checker requires none.
"""

from django.db import migrations

FINISHED = "('completed', 'failed', 'cancelled')"

GUARDS = f"""
CREATE FUNCTION chaos_guard_history() RETURNS trigger AS $$
BEGIN
    -- A finished history entry (a step's recorded outcome, a fired timer, a taken signal) is final:
    -- completing it again, changing its outcome, or claiming its step again is a stale write.
    IF OLD.status IN {FINISHED} AND (
        NEW.status IS DISTINCT FROM OLD.status OR NEW.result_json IS DISTINCT FROM OLD.result_json
        OR NEW.error_json IS DISTINCT FROM OLD.error_json OR NEW.finished_at IS DISTINCT FROM OLD.finished_at
        OR NEW.attempts IS DISTINCT FROM OLD.attempts OR NEW.started_at IS DISTINCT FROM OLD.started_at
    ) THEN
        INSERT INTO chaos_shop_anomaly (kind, "row", detail, at) VALUES (
            'history_rewritten', OLD.run_id::text || '#' || OLD.seq,
            json_build_object('old', row_to_json(OLD), 'new', row_to_json(NEW),
                              'by', current_setting('application_name'))::text,
            clock_timestamp());
    END IF;
    RETURN NEW;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER chaos_guard_history BEFORE UPDATE ON durable_django_historyentry
    FOR EACH ROW EXECUTE FUNCTION chaos_guard_history();

CREATE FUNCTION chaos_guard_history_insert() RETURNS trigger AS $$
BEGIN
    -- Nothing is added to the history of a run that has finished.
    IF EXISTS (SELECT 1 FROM durable_django_workflowrun WHERE id = NEW.run_id AND status IN {FINISHED}) THEN
        INSERT INTO chaos_shop_anomaly (kind, "row", detail, at) VALUES (
            'history_after_finish', NEW.run_id::text || '#' || NEW.seq,
            json_build_object('new', row_to_json(NEW), 'by', current_setting('application_name'))::text,
            clock_timestamp());
    END IF;
    RETURN NEW;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER chaos_guard_history_insert BEFORE INSERT ON durable_django_historyentry
    FOR EACH ROW EXECUTE FUNCTION chaos_guard_history_insert();

CREATE FUNCTION chaos_guard_run() RETURNS trigger AS $$
BEGIN
    -- A finished run stays as it ended.
    IF OLD.status IN {FINISHED} AND (
        NEW.status IS DISTINCT FROM OLD.status OR NEW.result_json IS DISTINCT FROM OLD.result_json
        OR NEW.error_json IS DISTINCT FROM OLD.error_json OR NEW.next_seq IS DISTINCT FROM OLD.next_seq
        OR NEW.finished_at IS DISTINCT FROM OLD.finished_at
    ) THEN
        INSERT INTO chaos_shop_anomaly (kind, "row", detail, at) VALUES (
            'run_rewritten', OLD.workflow_id,
            json_build_object('old_status', OLD.status, 'new_status', NEW.status, 'old_result', OLD.result_json,
                              'new_result', NEW.result_json, 'by', current_setting('application_name'))::text,
            clock_timestamp());
    END IF;
    RETURN NEW;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER chaos_guard_run BEFORE UPDATE ON durable_django_workflowrun
    FOR EACH ROW EXECUTE FUNCTION chaos_guard_run();

CREATE FUNCTION chaos_guard_signal() RETURNS trigger AS $$
BEGIN
    -- A signal is taken by one wait, once.
    IF OLD.consumed_seq IS NOT NULL AND NEW.consumed_seq IS DISTINCT FROM OLD.consumed_seq THEN
        INSERT INTO chaos_shop_anomaly (kind, "row", detail, at) VALUES (
            'signal_retaken', OLD.id::text,
            json_build_object('old_seq', OLD.consumed_seq, 'new_seq', NEW.consumed_seq,
                              'by', current_setting('application_name'))::text,
            clock_timestamp());
    END IF;
    RETURN NEW;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER chaos_guard_signal BEFORE UPDATE ON durable_django_signal
    FOR EACH ROW EXECUTE FUNCTION chaos_guard_signal();
"""

UNDO = """
DROP TRIGGER IF EXISTS chaos_guard_history ON durable_django_historyentry;
DROP TRIGGER IF EXISTS chaos_guard_history_insert ON durable_django_historyentry;
DROP TRIGGER IF EXISTS chaos_guard_run ON durable_django_workflowrun;
DROP TRIGGER IF EXISTS chaos_guard_signal ON durable_django_signal;
DROP FUNCTION IF EXISTS chaos_guard_history(), chaos_guard_history_insert(), chaos_guard_run(), chaos_guard_signal();
"""


class Migration(migrations.Migration):
    dependencies = [("chaos_shop", "0001_initial"), ("durable_django", "0001_initial")]

    operations = [migrations.RunSQL(GUARDS, UNDO)]
