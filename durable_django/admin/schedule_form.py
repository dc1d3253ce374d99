"""The schedule form: the same checks as ``durable.schedule()``, each error on its own field."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django import forms
from django.utils.translation import gettext_lazy as _

from ..core import registry
from ..core.schedules import ScheduleDefinition, build
from ..exceptions import DurableError, InvalidSchedule
from ..models import Schedule

if TYPE_CHECKING:
    _Base = forms.ModelForm[Schedule]
else:
    _Base = forms.ModelForm

__all__ = ["ScheduleForm"]

#: Where an ``InvalidSchedule`` message belongs, by what it names.
_FIELDS = {"cron=": "cron", "timezone=": "timezone", "every=": "every", "catch_up=": "catch_up", "jitter=": "jitter"}


def _workflow_choices() -> list[tuple[str, str]]:
    return [(name, name) for name in registry.workflow_names()]


class ScheduleForm(_Base):
    """Fields of a schedule made in the admin; ``clean()`` builds the definition the sweepers fire."""

    workflow_name = forms.ChoiceField(label=_("Workflow"), choices=_workflow_choices)
    args = forms.JSONField(
        initial=list,
        required=False,
        help_text='The workflow\'s positional arguments, a JSON list: <code>[42, "a"]</code>.',
    )
    kwargs = forms.JSONField(
        initial=dict, required=False, help_text='Its keyword arguments, a JSON object: <code>{"dry_run": true}</code>.'
    )

    class Meta:
        model = Schedule
        fields = ("name", "workflow_name", "cron", "timezone", "every", "overlap", "catch_up", "jitter", "paused")
        help_texts = {
            "cron": "5 fields: minute hour day-of-month month day-of-week, such as <code>0 2 * * *</code>. "
            "Empty if the schedule repeats every so often.",
            "timezone": "Where the cron's times are read, such as <code>Europe/Paris</code>.",
            "every": "Instead of a cron: an interval such as <code>01:00:00</code>, from the Unix epoch in UTC.",
            "catch_up": "After a downtime, how many missed ticks fire (the latest ones); 1 fires only the latest.",
            "jitter": "Each tick fires up to this much later, such as <code>00:05:00</code>.",
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.definition: ScheduleDefinition | None = None
        if self.instance.pk is not None:
            self.initial["args"], self.initial["kwargs"] = self.instance.arguments

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.errors:
            return data
        args, kwargs = data.get("args") or [], data.get("kwargs") or {}
        if not isinstance(args, list):
            self.add_error("args", "Use a JSON list, such as [] or [42].")
        if not isinstance(kwargs, dict):
            self.add_error("kwargs", 'Use a JSON object, such as {} or {"dry_run": true}.')
        if self.errors:
            return data
        try:
            self.definition = build(
                data["name"], registry.workflow(data["workflow_name"]), args=args, kwargs=kwargs,
                cron=data.get("cron") or None, every=data.get("every"),
                timezone=data.get("timezone") if data.get("cron") else None, overlap=data["overlap"],
                catch_up=data["catch_up"], jitter=data.get("jitter"),
            )  # fmt: skip
        except InvalidSchedule as error:
            message = str(error)
            field = next((name for key, name in _FIELDS.items() if key in message), None)
            self.add_error(field if field in self.fields else None, message)
        except DurableError as error:  # arguments JSON cannot hold, a workflow gone since the page loaded
            self.add_error(None, str(error))
        return data

    def save(self, commit: bool = True) -> Schedule:
        schedule = super().save(commit=False)
        assert self.definition is not None, "save() after a successful is_valid()"
        schedule.args_json = self.definition.args_json
        schedule.cron = self.definition.cadence.cron or ""
        if not schedule.cron:
            schedule.timezone = "UTC"
        if commit:
            schedule.save()
        return schedule
