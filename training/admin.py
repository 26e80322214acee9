from django.contrib import admin

from training import models


class ChecklistItemInline(admin.TabularInline):
    model = models.ChecklistItem
    extra = 1


@admin.register(models.Module)
class ModuleAdmin(admin.ModelAdmin):
    list_display = ["title", "position", "active"]
    inlines = [ChecklistItemInline]


@admin.register(models.TrainingSession)
class SessionAdmin(admin.ModelAdmin):
    list_display = ["__str__", "module", "trainer", "capacity"]
    list_filter = ["module"]
    filter_horizontal = ["audience_roles", "audience_departments"]


@admin.register(models.ClinicianProfile)
class ClinicianProfileAdmin(admin.ModelAdmin):
    list_display = ["user", "department", "is_lead", "contact"]
    list_filter = ["department", "is_lead"]


@admin.register(models.Feedback)
class FeedbackAdmin(admin.ModelAdmin):
    """No accession number here: the admin does not audit PHI views; use the feedback page."""

    list_display = ["__str__", "reporter", "status", "escalated", "created_at"]
    list_filter = ["status", "severity", "kind"]
    exclude = ["accession_number", "screenshot"]
    readonly_fields = ["reporter", "created_at"]


admin.site.register(models.Department)
admin.site.register(models.Enrolment)
admin.site.register(models.SignOff)
admin.site.register(models.Theme)
admin.site.register(models.Highlight)
admin.site.register(models.Material)
