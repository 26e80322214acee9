from django.shortcuts import render

from commandcenter.access import require


@require("view_roadmap")
def index(request):
    return render(request, "cutover/index.html")
