"""Triggers that record writes to updates the library must never accept (PostgreSQL only), as 0002's do.

An update is taken by one wait, once, and answered once: a committed write that takes it
again or changes its answer is recorded, and so is an update added to a finished run (its
caller would wait for an answer that never comes). The checker requires none.
"""

from django.db import migrations

FINISHED = "('completed', 'failed', 'cancelled')"

GUARDS = f"""
CREATE FUNCTION chaos_guard_update() RETURNS trigger AS $$
BEGIN
    IF (OLD.consumed_seq IS NOT NULL AND NEW.consumed_seq IS DISTINCT FROM OLD.consumed_seq) OR (
        OLD.answered_at IS NOT NULL AND (
            NEW.answered_at IS DISTINCT FROM OLD.answered_at OR NEW.reply_json IS DISTINCT FROM OLD.reply_json
            OR NEW.rejection IS DISTINCT FROM OLD.rejection)
    ) THEN
        INSERT INTO chaos_shop_anomaly (kind, "row", detail, at) VALUES (
            'update_rewritten', OLD.run_id::text || '/' || OLD.update_id,
            json_build_object('old', row_to_json(OLD), 'new', row_to_json(NEW),
                              'by', current_setting('application_name'))::text,
            clock_timestamp());
    END IF;
    RETURN NEW;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER chaos_guard_update BEFORE UPDATE ON durable_django_update
    FOR EACH ROW EXECUTE FUNCTION chaos_guard_update();

CREATE FUNCTION chaos_guard_update_insert() RETURNS trigger AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM durable_django_workflowrun WHERE id = NEW.run_id AND status IN {FINISHED}) THEN
        INSERT INTO chaos_shop_anomaly (kind, "row", detail, at) VALUES (
            'update_after_finish', NEW.run_id::text || '/' || NEW.update_id,
            json_build_object('new', row_to_json(NEW), 'by', current_setting('application_name'))::text,
            clock_timestamp());
    END IF;
    RETURN NEW;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER chaos_guard_update_insert BEFORE INSERT ON durable_django_update
    FOR EACH ROW EXECUTE FUNCTION chaos_guard_update_insert();
"""

UNDO = """
DROP TRIGGER IF EXISTS chaos_guard_update ON durable_django_update;
DROP TRIGGER IF EXISTS chaos_guard_update_insert ON durable_django_update;
DROP FUNCTION IF EXISTS chaos_guard_update(), chaos_guard_update_insert();
"""


class Migration(migrations.Migration):
    dependencies = [("chaos_shop", "0003_cleanuplog"), ("durable_django", "0006_updates")]

    operations = [migrations.RunSQL(GUARDS, UNDO)]
