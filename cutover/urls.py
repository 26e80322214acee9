from django.contrib.auth.decorators import login_not_required
from django.urls import path

from cutover import api, views, views_plans

app_name = "cutover"


def _api(view):
    """API views answer 401/403 themselves instead of redirecting to the login page."""
    return login_not_required(view)


urlpatterns = [
    path("", views.index, name="index"),
    path("new/template/", views.create_from_template, name="create_from_template"),
    path("new/", views.create_roadmap, name="create_roadmap"),
    path("<int:pk>/", views.roadmap_detail, name="roadmap"),
    path("<int:pk>/gantt.svg", views.gantt_svg, name="gantt_svg"),
    path("<int:pk>/workstreams/", views.add_workstream, name="add_workstream"),
    path("<int:pk>/tasks/new/", views.task_new, name="task_new"),
    path("<int:pk>/baselines/", views.baseline_create, name="baseline_create"),
    path("<int:pk>/export.csv", views.export_csv, name="export_csv"),
    path("<int:pk>/import/", views.import_csv, name="import_csv"),
    path("<int:pk>/holidays/", views.holidays, name="holidays"),
    path("<int:pk>/refresh-live/", views.refresh_live, name="refresh_live"),
    path("tasks/<int:task_pk>/", views.task_edit, name="task_edit"),
    path("tasks/<int:task_pk>/preview/", views.task_preview, name="task_preview"),
    path("tasks/<int:task_pk>/move/", views.task_move, name="task_move"),
    path("tasks/<int:task_pk>/delete/", views.task_delete, name="task_delete"),
    path("tasks/<int:task_pk>/dependencies/", views.dependency_add, name="dependency_add"),
    path("dependencies/<int:dep_pk>/delete/", views.dependency_delete, name="dependency_delete"),
    path("baselines/<int:baseline_pk>/", views.baseline_compare, name="baseline"),
    # integration cutover plans
    path("cutover/", views_plans.plans, name="plans"),
    path("cutover/new/<int:integration_pk>/", views_plans.plan_create, name="plan_create"),
    path("cutover/<int:pk>/", views_plans.plan_detail, name="plan"),
    path("cutover/<int:pk>/body/", views_plans.plan_body, name="plan_body"),
    path("cutover/<int:pk>/probes/", views_plans.probe_add, name="probe_add"),
    path("cutover/stages/<int:stage_pk>/items/", views_plans.item_add, name="item_add"),
    path("cutover/stages/<int:stage_pk>/open/", views_plans.gate_open, name="gate_open"),
    path("cutover/stages/<int:stage_pk>/close/", views_plans.gate_close, name="gate_close"),
    path("cutover/stages/<int:stage_pk>/rollback/", views_plans.rollback_save, name="rollback"),
    path("cutover/items/<int:item_pk>/sign/", views_plans.item_sign, name="item_sign"),
    path("cutover/items/<int:item_pk>/unsign/", views_plans.item_unsign, name="item_unsign"),
    path("cutover/items/<int:item_pk>/evidence/", views_plans.item_evidence, name="item_evidence"),
    path(
        "cutover/items/<int:item_pk>/evidence/file/",
        views_plans.item_evidence_file,
        name="item_evidence_file",
    ),
    path("cutover/probes/<int:probe_pk>/run/", views_plans.probe_run, name="probe_run"),
    # viewer validation
    path("viewers/", views_plans.viewers, name="viewers"),
    path("viewers/new/", views_plans.viewer_create, name="viewer_create"),
    path("viewers/matrix/", views_plans.viewer_matrix, name="viewer_matrix"),
    path("viewers/<int:pk>/", views_plans.viewer_detail, name="viewer"),
    path("viewers/<int:pk>/generate/", views_plans.viewer_generate, name="viewer_generate"),
    path("viewers/cases/<int:case_pk>/", views_plans.case_record, name="case_record"),
    path(
        "viewers/cases/<int:case_pk>/screenshot/",
        views_plans.case_screenshot,
        name="case_screenshot",
    ),
    # go/no-go
    path("readiness/", views_plans.readiness_view, name="readiness"),
    path("readiness/thresholds/", views_plans.threshold_save, name="threshold_save"),
    # REST API
    path("api/roadmaps/", _api(api.roadmaps), name="api_roadmaps"),
    path("api/roadmaps/<int:pk>/", _api(api.roadmap), name="api_roadmap"),
    path("api/roadmaps/<int:pk>/tasks/", _api(api.tasks), name="api_tasks"),
    path("api/roadmaps/<int:pk>/baselines/", _api(api.baselines), name="api_baselines"),
    path("api/roadmaps/<int:pk>/tasks.csv", _api(api.tasks_csv), name="api_tasks_csv"),
    path("api/tasks/<int:pk>/", _api(api.task), name="api_task"),
    path("api/tasks/<int:pk>/preview/", _api(api.task_preview), name="api_task_preview"),
    path("api/dependencies/", _api(api.dependencies), name="api_dependencies"),
    path("api/dependencies/<int:pk>/", _api(api.dependency), name="api_dependency"),
    path("api/baselines/<int:pk>/compare/", _api(api.baseline_compare), name="api_compare"),
    path("api/plans/", _api(api.plans), name="api_plans"),
    path("api/plans/<int:pk>/", _api(api.plan), name="api_plan"),
    path("api/items/<int:pk>/sign/", _api(api.item_sign), name="api_item_sign"),
    path("api/stages/<int:pk>/open/", _api(api.gate_open), name="api_gate_open"),
    path("api/probes/<int:pk>/run/", _api(api.probe_run), name="api_probe_run"),
    path("api/probes/<int:pk>/results/", _api(api.probe_results), name="api_probe_results"),
    path("api/viewers/", _api(api.viewers), name="api_viewers"),
    path("api/viewers/<int:pk>/cases/", _api(api.viewer_cases), name="api_viewer_cases"),
    path("api/cases/<int:pk>/", _api(api.case), name="api_case"),
    path("api/readiness/", _api(api.readiness_view), name="api_readiness"),
]
