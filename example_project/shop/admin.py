from django.contrib import admin

from durable_django.admin import WorkflowRunsMixin

from .models import Order


@admin.register(Order)
class OrderAdmin(WorkflowRunsMixin, admin.ModelAdmin):
    """An order's page lists its checkout runs (``checkout.using(subject=order).start(...)``)."""

    list_display = ("pk", "status", "amount_cents", "created_at")
