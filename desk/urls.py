"""The 24/7 command center's pages and API, under /command-center/ (namespace "cc").

The board itself is /command-center/ (named "board" in the root URLconf).
"""

from django.urls import path

from desk import api, views

app_name = "cc"

urlpatterns = [
    path("board/columns/<slug:status>/", views.board_column, name="board-column"),
    path("overview/", views.overview, name="overview"),
    path("tickets/new/", views.new_ticket, name="ticket-new"),
    path("tickets/<int:pk>/", views.ticket_detail, name="ticket"),
    path("tickets/<int:pk>/edit/", views.ticket_edit, name="ticket-edit"),
    path("tickets/<int:pk>/status/", views.ticket_status, name="ticket-status"),
    path("tickets/<int:pk>/comment/", views.ticket_comment, name="ticket-comment"),
    path("tickets/<int:pk>/attach/", views.ticket_attach, name="ticket-attach"),
    path("attachments/<int:pk>/", views.attachment, name="attachment"),
    path("breaches/", views.breaches, name="breaches"),
    path("escalation/", views.escalation_policies, name="escalation"),
    path("escalation/new/", views.escalation_edit, name="escalation-new"),
    path("escalation/<int:pk>/", views.escalation_edit, name="escalation-edit"),
    path("roster/", views.roster_page, name="roster"),
    path("roster/<int:rotation_pk>/handoff/", views.handoff_write, name="handoff-write"),
    path("roster/handoffs/<int:pk>/ack/", views.handoff_acknowledge, name="handoff-ack"),
    path("roster/overrides/", views.override_add, name="override-add"),
    path("monitoring/", views.monitoring_board, name="monitoring"),
    path("reports/", views.report_page, name="reports"),
    path("reports/tickets.csv", views.report_csv, name="reports-csv"),
    path("notifications/", views.notification_list, name="notifications"),
    path("notifications/read/", views.notifications_read, name="notifications-read"),
    # REST API
    path("api/tickets/", api.TicketList.as_view(), name="api-tickets"),
    path("api/tickets/<int:pk>/", api.TicketDetail.as_view(), name="api-ticket"),
    path("api/tickets/<int:pk>/transition/", api.transition_view, name="api-ticket-transition"),
    path("api/tickets/<int:pk>/comments/", api.comment_view, name="api-ticket-comments"),
    path("api/tickets/<int:pk>/attachments/", api.attachment_view, name="api-ticket-attachments"),
    path("api/tickets/<int:pk>/history/", api.history_view, name="api-ticket-history"),
    path("api/priority-matrix/", api.matrix_view, name="api-priority-matrix"),
    path("api/escalation-policies/", api.PolicyList.as_view(), name="api-policies"),
    path("api/escalation-policies/<int:pk>/", api.PolicyDetail.as_view(), name="api-policy"),
    path("api/on-call/", api.on_call_view, name="api-on-call"),
    path("api/rotations/", api.RotationList.as_view(), name="api-rotations"),
    path("api/rotations/<int:pk>/", api.RotationDetail.as_view(), name="api-rotation"),
    path("api/overrides/", api.OverrideList.as_view(), name="api-overrides"),
    path("api/handoffs/", api.HandoffList.as_view(), name="api-handoffs"),
    path(
        "api/handoffs/<int:pk>/acknowledge/", api.handoff_acknowledge_view, name="api-handoff-ack"
    ),
    path("api/monitors/", api.MonitorList.as_view(), name="api-monitors"),
    path("api/monitors/<int:pk>/", api.MonitorDetail.as_view(), name="api-monitor"),
    path("api/open-ticket-counts/", api.open_counts_view, name="api-open-counts"),
    path("api/breaches/", api.breaches_view, name="api-breaches"),
    path("api/monitoring/", api.monitoring_view, name="api-monitoring"),
    path("api/reports/", api.reports_view, name="api-reports"),
    path("api/notifications/", api.notifications_view, name="api-notifications"),
]
