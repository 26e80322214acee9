from django.urls import path

from migration import (
    api,
    design_api,
    design_views,
    forecast_views,
    validation_api,
    validation_views,
    views,
)

app_name = "migration"
urlpatterns = [
    path("", views.index, name="index"),
    path("waves/new/", views.wave_new, name="wave_new"),
    path("waves/<slug:name>/", views.wave_detail, name="wave"),
    path("waves/<slug:name>/studies/", views.wave_studies, name="wave_studies"),
    *validation_views.urlpatterns,
    *design_views.urlpatterns,
    *forecast_views.urlpatterns,
    path("waves/<slug:name>/<slug:verb>/", views.wave_action, name="wave_action"),
    path("destinations/", views.destinations, name="destinations"),
    path("destinations/new/", views.destination_new, name="destination_new"),
    path("destinations/<slug:name>/check/", views.destination_check, name="destination_check"),
    path("profiles/", views.profiles, name="profiles"),
    path("profiles/new/", views.profile_edit, name="profile_new"),
    path("profiles/<slug:name>/", views.profile_edit, name="profile"),
    path("profiles/<slug:name>/preview/", views.profile_preview, name="profile_preview"),
    path("tables/", views.tables, name="tables"),
    path("conflicts/", views.conflicts, name="conflicts"),
    path("conflicts/<int:pk>/decide/", views.conflict_decide, name="conflict_decide"),
    path("control/", views.control, name="control"),
    *api.urlpatterns,
    *validation_api.urlpatterns,
    *design_api.urlpatterns,
]
