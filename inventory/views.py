from django.shortcuts import render

from commandcenter.access import require


@require("view_inventory")
def index(request):
    return render(request, "inventory/index.html")
