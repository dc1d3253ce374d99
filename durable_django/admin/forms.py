"""Forms of the run page's actions: what an operator types before a signal or a fork."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _

from ..core.requests import Kind
from ..models import HistoryEntry, WorkflowRun

__all__ = ["ForkForm", "SignalForm"]


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def waited_for(run: WorkflowRun) -> list[str]:
    """The names of the signals the run waits for now, in the order it began waiting."""
    waits = HistoryEntry.objects.filter(run=run, kind=Kind.SIGNAL).pending().order_by("seq")
    return list(dict.fromkeys(waits.values_list("name", flat=True)))


class _Suggesting(forms.TextInput):
    """A text input that suggests ``names`` (an HTML datalist): any other name can still be typed."""

    def __init__(self, names: list[str]) -> None:
        super().__init__(attrs={"list": "durable-signal-names", "autocomplete": "off"})
        self.names = names

    def render(self, name: str, value: Any, attrs: Any = None, renderer: Any = None) -> SafeString:
        options = format_html_join("", '<option value="{}">', ((name,) for name in self.names))
        return format_html(
            '{}<datalist id="durable-signal-names">{}</datalist>', super().render(name, value, attrs, renderer), options
        )


class SignalForm(forms.Form):
    """A signal's name and its JSON payload, parsed here and checked by ``durable.signal``."""

    name = forms.CharField(max_length=255, help_text=_("The name a <code>wait_signal()</code> waits for."))
    payload = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 8, "cols": 60, "class": "durable-code", "spellcheck": "false"}),
        required=False,
        initial="null",
        help_text=_("JSON. Empty means <code>null</code>."),
    )

    def __init__(self, run: WorkflowRun, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        names = waited_for(run)
        field = self.fields["name"]
        field.widget = _Suggesting(names)
        if names:
            waits = ", ".join(f"<code>{format_html('{}', name)}</code>" for name in names)
            field.help_text = f"The run waits for {waits} now; a signal of another name waits in its inbox."
        else:
            field.help_text = "The run waits for no signal now; this one waits in its inbox until a wait takes it."
        if len(names) == 1:
            field.initial = names[0]

    def clean_payload(self) -> Any:
        text = self.cleaned_data["payload"].strip() or "null"
        try:
            # Python's json module accepts NaN and Infinity; JSON (and PostgreSQL) do not.
            return json.loads(text, parse_constant=_refuse_constant)
        except ValueError as error:
            raise forms.ValidationError(f"This is not valid JSON: {error}.") from None


class ForkForm(forms.Form):
    """Where the new run starts over: recorded outcomes before that position are reused."""

    from_seq = forms.TypedChoiceField(
        label=_("Restart from"),
        coerce=int,
        help_text=_("Everything before this position is reused as recorded; it and what follows run again."),
    )
    workflow_id = forms.CharField(
        label=_("New workflow id"),
        max_length=255,
        required=False,
        help_text=_("Empty: the original id with <code>.fork-</code> and a random suffix."),
    )

    def __init__(self, run: WorkflowRun, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Leaves of a group are not positions a fork can start from; the library says so too.
        positions = HistoryEntry.objects.positions().filter(run=run).order_by("seq")
        choices = [
            (seq, f"#{seq} {kind} {name}".rstrip()) for seq, kind, name in positions.values_list("seq", "kind", "name")
        ]
        choices.append((run.next_seq, f"#{run.next_seq} (after the last recorded position)"))
        field = self.fields["from_seq"]
        assert isinstance(field, forms.TypedChoiceField)
        field.choices = choices

    def clean_workflow_id(self) -> str | None:
        return self.cleaned_data["workflow_id"].strip() or None
