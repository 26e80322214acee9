from django.urls import path

from sync import api, views

app_name = "sync"
urlpatterns = [
    path("", views.index, name="index"),
    path("appointments/", views.appointments, name="appointments"),
    path("sources/<slug:name>/toggle/", views.toggle, name="toggle"),
    *api.urlpatterns,
]
