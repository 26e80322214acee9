from django.shortcuts import render

from commandcenter.access import require


@require("view_migration")
def index(request):
    return render(request, "migration/index.html")
