from django.urls import include, path
from rest_framework.routers import SimpleRouter

from training import api, views

app_name = "training"

router = SimpleRouter()
router.register("modules", api.ModuleViewSet, basename="api-module")
router.register("departments", api.DepartmentViewSet, basename="api-department")
router.register("profiles", api.ProfileViewSet, basename="api-profile")
router.register("sessions", api.SessionViewSet, basename="api-session")
router.register("sign-offs", api.SignOffViewSet, basename="api-signoff")
router.register("feedback", api.FeedbackViewSet, basename="api-feedback")
router.register("highlights", api.HighlightViewSet, basename="api-highlight")

urlpatterns = [
    path("", views.index, name="index"),
    path("sessions/", views.session_list, name="sessions"),
    path("sessions/new/", views.session_new, name="session_new"),
    path("sessions/<int:pk>/", views.session_detail, name="session"),
    path("sessions/<int:pk>/edit/", views.session_edit, name="session_edit"),
    path("sessions/<int:pk>/enrol/", views.session_enrol, name="session_enrol"),
    path("sessions/<int:pk>/cancel/", views.session_cancel, name="session_cancel"),
    path("sessions/<int:pk>/attendance/", views.session_attendance, name="session_attendance"),
    path("sessions/<int:pk>/materials/", views.material_add, name="material_add"),
    path("sessions/<int:pk>/calendar.ics", views.session_ics, name="session_ics"),
    path("materials/<int:pk>/", views.material_file, name="material_file"),
    path("my/", views.my_training, name="mine"),
    path("my/calendar.ics", views.my_ics, name="my_ics"),
    path("competencies/", views.competencies, name="competencies"),
    path("competencies/<int:pk>/sign-off/", views.sign_off, name="sign_off"),
    path("readiness/", views.readiness, name="readiness"),
    path("feedback/", views.feedback_queue, name="feedback_queue"),
    path("feedback/new/", views.feedback_new, name="feedback_new"),
    path("feedback/mine/", views.feedback_mine, name="feedback_mine"),
    path("feedback/dashboard/", views.feedback_dashboard, name="feedback_dashboard"),
    path("feedback/<int:pk>/", views.feedback_detail, name="feedback"),
    path("feedback/<int:pk>/screenshot/", views.feedback_screenshot, name="feedback_screenshot"),
    path("feedback/<int:pk>/triage/", views.feedback_triage, name="feedback_triage"),
    path("feedback/<int:pk>/reply/", views.feedback_reply, name="feedback_reply"),
    path("whats-new/", views.whats_new, name="whats_new"),
    path("whats-new/new/", views.highlight_edit, name="highlight_new"),
    path("whats-new/<int:pk>/edit/", views.highlight_edit, name="highlight_edit"),
    path("whats-new/<int:pk>/delete/", views.highlight_delete, name="highlight_delete"),
    path("support/", views.support, name="support"),
    path("people/", views.people, name="people"),
    path("people/<int:user_pk>/", views.person_update, name="person_update"),
    path("api/", include(router.urls)),
    path("api/my/enrolments/", api.my_enrolments, name="api-my-enrolments"),
    path("api/readiness/", api.readiness, name="api-readiness"),
]
