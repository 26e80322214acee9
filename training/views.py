from django.shortcuts import render

from commandcenter.access import require


@require("view_training")
def index(request):
    return render(request, "training/index.html")
