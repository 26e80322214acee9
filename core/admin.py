"""API tokens in the admin: revocable, never shown again."""

from django.contrib import admin

from core import models


@admin.register(models.ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens are issued by `manage.py apitoken issue` or the API (the key is shown once);
    here they are read and revoked."""

    list_display = ["name", "user", "prefix", "created_at", "expires_at", "revoked_at"]
    readonly_fields = [f.name for f in models.ApiToken._meta.fields if f.name != "revoked_at"]
    actions = ["revoke"]

    def has_add_permission(self, request):
        return False

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request, queryset):
        from core import tokens

        for token in queryset:
            tokens.revoke(token.pk)
