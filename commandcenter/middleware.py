from django.contrib.auth.middleware import LoginRequiredMiddleware as DjangoLoginRequired


class LoginRequiredMiddleware(DjangoLoginRequired):
    """Every page needs login; the REST APIs (`/api/…` and each app's `…/api/…`) answer
    401/403 themselves instead of redirecting to the login page."""

    def process_view(self, request, view_func, view_args, view_kwargs):
        if "/api/" in request.path:
            return None
        return super().process_view(request, view_func, view_args, view_kwargs)
