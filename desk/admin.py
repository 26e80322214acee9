"""The command center's configuration tables, editable by administrators."""

from django.contrib import admin

from desk import models


@admin.register(models.PriorityRule)
class PriorityRuleAdmin(admin.ModelAdmin):
    list_display = ["impact", "urgency", "priority"]
    list_editable = ["priority"]


@admin.register(models.Transition)
class TransitionAdmin(admin.ModelAdmin):
    list_display = ["source", "target", "rule", "allowed"]


@admin.register(models.SlaTarget)
class SlaTargetAdmin(admin.ModelAdmin):
    list_display = ["priority", "acknowledge_minutes", "resolve_minutes"]
    list_editable = ["acknowledge_minutes", "resolve_minutes"]


class MemberInline(admin.TabularInline):
    model = models.RotationMember
    extra = 1


@admin.register(models.Rotation)
class RotationAdmin(admin.ModelAdmin):
    list_display = ["name", "role_label", "starts_at", "shift_hours", "is_lead", "active"]
    inlines = [MemberInline]


@admin.register(models.Override)
class OverrideAdmin(admin.ModelAdmin):
    list_display = ["rotation", "user", "starts_at", "ends_at", "reason"]


@admin.register(models.Monitor)
class MonitorAdmin(admin.ModelAdmin):
    list_display = ["name", "metric", "comparison", "threshold", "enabled"]
    list_editable = ["threshold", "enabled"]


class StepInline(admin.TabularInline):
    model = models.EscalationStep
    extra = 1


@admin.register(models.EscalationPolicy)
class EscalationPolicyAdmin(admin.ModelAdmin):
    list_display = ["name", "priority", "active", "repeat_times", "repeat_after_minutes"]
    inlines = [StepInline]


@admin.register(models.Ticket)
class TicketAdmin(admin.ModelAdmin):
    list_display = ["id", "title", "priority", "status", "category", "source", "opened_at"]
    list_filter = ["status", "priority", "category", "source"]
    search_fields = ["title", "cause"]
    readonly_fields = [f.name for f in models.Ticket._meta.fields]
