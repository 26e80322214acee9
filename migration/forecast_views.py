"""The forecast's pages: the what-if page (sliders redraw the charts through htmx, no
reload), its CSV and printable report, and the editable assumptions and price lists."""

import csv
from datetime import datetime

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path

from core.access import require
from migration import charts, planning
from migration.forms import AssumptionsForm, PriceListForm, WhatIfForm
from migration.models import ForecastAssumptions, PriceList


def _result(request):
    form = WhatIfForm(request.GET or None)
    overrides = form.overrides() if form.is_bound and form.is_valid() else {}
    return form, planning.plan(**overrides)


def _when(value):
    return datetime.fromisoformat(value)


def _charts(result):
    actual = [(_when(t), b) for t, b in result["actual_series"]]
    planned = [(_when(t), b) for t, b in result["plan_series"]]
    return {
        "cumulative_chart": charts.cumulative_tb(actual, planned, result["stored_bytes"]),
        "cost_chart": charts.cost_area(result["monthly_cost"], result["prices"]["currency"]),
    }


def _context(request):
    form, result = _result(request)
    assumptions = result["assumptions"]
    sliders = {
        "hosts": assumptions["hosts"],
        "link_mbps": assumptions["link_mbps"],
        "hours_per_day": assumptions["hours_per_day"] or 0,
        "target_date": result["target_date"] or "",
    }
    return {"form": form, "r": result, "sliders": sliders, "tasks": planning.roadmap_tasks(result),
            **_charts(result)}  # fmt: skip


@require("view_forecast")
def forecast(request):
    """The what-if page; an htmx request (a slider moved) gets only the results part."""
    context = _context(request)
    if request.htmx:
        return render(request, "migration/_forecast_results.html", context)
    return render(request, "migration/forecast.html", context)


@require("view_forecast")
def forecast_report(request):
    return render(request, "migration/forecast_print.html", _context(request))


@require("view_forecast")
def forecast_csv(request):
    """One row per month (cost parts) after one row per wave (finish dates)."""
    _form, result = _result(request)
    response = HttpResponse(content_type="text/csv")
    response["Content-Disposition"] = 'attachment; filename="forecast.csv"'
    out = csv.writer(response)
    out.writerow(["wave", "remaining_bytes", "finish", "finish_p10", "finish_p90"])
    for wave in result["waves"]:
        out.writerow([wave["name"], int(wave["remaining_bytes"]), wave["finish_at"],
                      wave["finish_p10_at"], wave["finish_p90_at"]])  # fmt: skip
    out.writerow(["all", int(result["remaining_bytes"]), result["finish_at"],
                  result["finish_p10_at"], result["finish_p90_at"]])  # fmt: skip
    out.writerow([])
    parts = ["storage_standard", "storage_cold", "requests", "retrieval", "egress", "total"]
    out.writerow(["month", *parts, "currency"])
    for row in result["monthly_cost"]:
        out.writerow([row["month"], *[row[p] for p in parts], result["prices"]["currency"]])
    return response


@require("edit_forecast")
def assumptions(request):
    form = AssumptionsForm(request.POST or None, instance=ForecastAssumptions.get())
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, "Forecast assumptions saved.")
        return redirect("migration:forecast")
    context = {"form": form, "price_lists": PriceList.objects.all()}
    return render(request, "migration/forecast_assumptions.html", context)


@require("edit_forecast")
def price_list(request, name=None):
    prices = get_object_or_404(PriceList, name=name) if name else None
    form = PriceListForm(request.POST or None, instance=prices)
    if request.method == "POST" and form.is_valid():
        saved = form.save()
        messages.success(request, f"Price list {saved.name} saved (taken on {saved.taken_on}).")
        return redirect("migration:forecast_assumptions")
    return render(request, "migration/price_list.html", {"form": form, "prices": prices})


urlpatterns = [
    path("forecast/", forecast, name="forecast"),
    path("forecast/report/", forecast_report, name="forecast_report"),
    path("forecast.csv", forecast_csv, name="forecast_csv"),
    path("forecast/assumptions/", assumptions, name="forecast_assumptions"),
    path("prices/new/", price_list, name="price_list_new"),
    path("prices/<slug:name>/", price_list, name="price_list"),
]
