from django.urls import include, path
from rest_framework.routers import DefaultRouter

from inventory import api, views

app_name = "inventory"

router = DefaultRouter(trailing_slash=True)
router.include_format_suffixes = False  # JSON only: no `.json` twins of every route
router.register("sources", api.PacsSourceViewSet, basename="api-source")
router.register("crawls", api.CrawlRunViewSet, basename="api-crawl")
router.register("studies", api.StudyViewSet, basename="api-study")
router.register("witnesses", api.WitnessViewSet, basename="api-witness")
for slug, viewset in api.CATALOGUE_VIEWSETS.items():
    router.register(f"catalogue/{slug}", viewset, basename=f"api-{slug}")
router.register("capabilities", api.ViewerCapabilityViewSet, basename="api-capability")

urlpatterns = [
    path("", views.index, name="index"),
    path("sources/", views.sources, name="sources"),
    path("sources/<int:pk>/", views.source_detail, name="source"),
    path("sources/<int:pk>/echo/", views.source_echo, name="source_echo"),
    path("sources/<int:pk>/delete/", views.source_delete, name="source_delete"),
    path("sources/<int:pk>/crawl/", views.crawl_start, name="crawl_start"),
    path("sources/<int:pk>/compare/", views.compare, name="compare"),
    path("sources/<int:pk>/compare.csv", views.compare_csv, name="compare_csv"),
    path("crawls/<int:pk>/", views.crawl_detail, name="crawl"),
    path("crawls/<int:pk>/cancel/", views.crawl_cancel, name="crawl_cancel"),
    path("crawls/<int:pk>/ranges.csv", views.crawl_ranges_csv, name="crawl_ranges_csv"),
    path("studies/", views.studies, name="studies"),
    path("studies.csv", views.studies_csv, name="studies_csv"),
    path("studies/<int:pk>/", views.study_detail, name="study"),
    path("summary.csv", views.summary_csv, name="summary_csv"),
    path("catalogue/", views.catalogue, name="catalogue"),
    path("catalogue/<slug:kind>/", views.catalogue_list, name="catalogue_list"),
    path("catalogue/<slug:kind>.csv", views.catalogue_export, name="catalogue_export"),
    path("catalogue/<slug:kind>/import/", views.catalogue_import, name="catalogue_import"),
    path("catalogue/<slug:kind>/<int:pk>/", views.catalogue_edit, name="catalogue_edit"),
    path("catalogue/<slug:kind>/<int:pk>/delete/", views.catalogue_delete, name="catalogue_delete"),
    path("api/summary/", api.summary_view, name="api-summary"),
    path("api/", include(router.urls)),
]
