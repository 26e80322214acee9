from django.urls import path

from cutover import views

app_name = "cutover"
urlpatterns = [path("", views.index, name="index")]
