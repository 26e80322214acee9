from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import SimpleRouter

from commandcenter import account_views, accounts, api, token_api, views
from commandcenter.access import public, require

admin.site.login = account_views.admin_login
token_router = SimpleRouter()
token_router.register("tokens", token_api.ApiTokenViewSet, basename="api-token")

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("command-center/", views.board, name="board"),
    path("command-center/", include("commandcenter.center_urls")),
    path("accounts/login/", public(accounts.LoginView.as_view()), name="login"),
    path("accounts/session/", account_views.session_status, name="session_status"),
    path("accounts/two-factor/", account_views.two_factor, name="two_factor"),
    path("accounts/logout/", public(auth_views.LogoutView.as_view()), name="logout"),
    path(
        "accounts/password/",
        require("view_home")(auth_views.PasswordChangeView.as_view()),
        name="password_change",
    ),
    path(
        "accounts/password/done/",
        require("view_home")(auth_views.PasswordChangeDoneView.as_view()),
        name="password_change_done",
    ),
    path("inventory/", include("inventory.urls")),
    path("migration/", include("migration.urls")),
    path("roadmap/", include("cutover.urls")),
    path("training/", include("training.urls")),
    path("sync/", include("sync.urls")),
    path("api/health/", api.health_view, name="api-health"),
    path("api/me/", api.me_view, name="api-me"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/", include(token_router.urls)),
    path("admin/", admin.site.urls),
]
