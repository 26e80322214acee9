from django.urls import path

from migration import views

app_name = "migration"
urlpatterns = [path("", views.index, name="index")]
