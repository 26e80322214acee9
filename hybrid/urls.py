from django.urls import path

from hybrid import api, views

app_name = "hybrid"
urlpatterns = [
    path("locate/", views.locate_page, name="locate"),
    path("locate/<int:pk>/", views.study_card, name="study"),
    path("locate/<int:pk>/find/", views.live_find, name="live_find"),
    path("locate/<int:pk>/migrate-now/", views.migrate_now, name="migrate_now"),
    path("bridges/", views.bridges, name="bridges"),
    path("bridges/<slug:name>/", views.bridge_detail, name="bridge"),
    path("bridges/<slug:name>/probe/", views.bridge_probe, name="bridge_probe"),
    path("forwards/<int:pk>/retry/", views.forward_retry, name="forward_retry"),
    path("round-trips/<int:pk>/sign/", views.round_trip_sign, name="round_trip_sign"),
    # REST API
    path("api/locate/", api.locate_view, name="api-locate"),
    path("api/locate/<int:pk>/find/", api.live_find_view, name="api-live-find"),
    path("api/locate/<int:pk>/migrate-now/", api.migrate_now_view, name="api-migrate-now"),
    path("api/bridges/", api.bridges_view, name="api-bridges"),
    path("api/bridges/<int:pk>/", api.bridge_view, name="api-bridge"),
    path("api/bridges/<int:pk>/forwards/", api.forwards_view, name="api-forwards"),
    path("api/bridges/<int:pk>/round-trips/", api.round_trips_view, name="api-round-trips"),
    path("api/forwards/<int:pk>/retry/", api.forward_retry_view, name="api-forward-retry"),
    path("api/round-trips/<int:pk>/", api.round_trip_view, name="api-round-trip"),
    path("api/round-trips/<int:pk>/sign/", api.sign_view, name="api-round-trip-sign"),
]
