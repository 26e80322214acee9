from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import SimpleRouter

from core import account_views, accounts, token_api
from core import api as core_api
from core import views as core_views
from core.access import public, require
from desk import views as desk_views

admin.site.login = account_views.admin_login
token_router = SimpleRouter()
token_router.register("tokens", token_api.ApiTokenViewSet, basename="api-token")

urlpatterns = [
    path("", core_views.home, name="home"),
    path("healthz", core_views.healthz, name="healthz"),
    path("command-center/", desk_views.board, name="board"),
    path("command-center/", include("desk.urls")),
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
    path("hybrid/", include("hybrid.urls")),
    path("sync/", include("sync.urls")),
    path("api/health/", core_api.health_view, name="api-health"),
    path("api/me/", core_api.me_view, name="api-me"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/", include(token_router.urls)),
    path("admin/", admin.site.urls),
]
