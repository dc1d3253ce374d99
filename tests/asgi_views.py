"""Async views as an application writes them: the a-twins and await_result, no sync_to_async."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.urls import path

import durable_django as durable
from tests.testapp.workflows import echo_workflow, inspectable


async def double_it(request: HttpRequest, value: int) -> JsonResponse:
    """Start a run and answer with its result: what a short workflow behind an API looks like."""
    run = await echo_workflow.using(attributes={"source": "api"}).astart(value)
    try:
        result = await run.await_result(timeout=float(request.GET.get("timeout", 30)))
    except durable.WaitTimeout:
        return JsonResponse({"workflow_id": run.workflow_id, "status": run.status}, status=202)
    return JsonResponse({"workflow_id": run.workflow_id, "result": result})


async def ship(request: HttpRequest, workflow_id: str) -> JsonResponse:
    """Send a signal to a run found by its id, then report where it stands."""
    run = await durable.aget_run(workflow_id)
    await run.asignal("ship", {"carrier": request.GET.get("carrier", "UPS")})
    return JsonResponse({"result": await run.await_result(timeout=30)})


async def inspect(request: HttpRequest, workflow_id: str) -> JsonResponse:
    run = await durable.aget_run(workflow_id)
    return JsonResponse({"locals": await run.aquery(), "status": run.status})


async def start_inspectable(request: HttpRequest, order_id: int) -> JsonResponse:
    run = await inspectable.astart(order_id, workflow_id=f"inspect-{order_id}")
    return JsonResponse({"workflow_id": run.workflow_id})


urlpatterns = [
    path("double/<int:value>/", double_it),
    path("ship/<str:workflow_id>/", ship),
    path("inspect/<str:workflow_id>/", inspect),
    path("inspectable/<int:order_id>/", start_inspectable),
]
