from rest_framework import serializers

from cutover import actions
from cutover.models import (
    Baseline,
    ChecklistItem,
    CloudViewer,
    CutoverPlan,
    Dependency,
    Probe,
    ProbeResult,
    Roadmap,
    Stage,
    Task,
    ViewerTestCase,
)


class RoadmapSerializer(serializers.ModelSerializer):
    go_live_date = serializers.DateField(
        source="go_live.early_start", read_only=True, default=None, allow_null=True
    )
    template = serializers.BooleanField(
        write_only=True, default=False, help_text="create the standard PACS-to-cloud roadmap"
    )

    class Meta:
        model = Roadmap
        fields = ["id", "name", "start_date", "description", "go_live", "go_live_date"]
        fields += ["created_at", "template"]
        read_only_fields = ["go_live", "created_at"]


class TaskSerializer(serializers.ModelSerializer):
    depends_on = serializers.SerializerMethodField()

    class Meta:
        model = Task
        fields = ["id", "roadmap", "code", *actions.EDITABLE, *actions.SCHEDULED, "depends_on"]
        read_only_fields = ["roadmap", "code", *actions.SCHEDULED]

    def get_depends_on(self, task) -> list[dict]:
        return [
            {"id": d.pk, "predecessor": d.predecessor_id, "kind": d.kind, "lag": d.lag}
            for d in task.predecessor_links.all()
        ]


class ShiftSerializer(serializers.Serializer):
    task = serializers.IntegerField(allow_null=True, help_text="the go-live milestone")
    shift = serializers.IntegerField(help_text="working days; positive = later")
    before = serializers.DateField(allow_null=True)
    after = serializers.DateField(allow_null=True)
    message = serializers.CharField()


class DependencySerializer(serializers.ModelSerializer):
    class Meta:
        model = Dependency
        fields = ["id", "predecessor", "successor", "kind", "lag"]


class BaselineSerializer(serializers.ModelSerializer):
    class Meta:
        model = Baseline
        fields = ["id", "roadmap", "name", "created_at"]
        read_only_fields = ["roadmap", "created_at"]


class SlipSerializer(serializers.Serializer):
    task = serializers.IntegerField(source="task.pk")
    code = serializers.CharField(source="task.code")
    name = serializers.CharField(source="task.name")
    milestone = serializers.BooleanField(source="task.is_milestone")
    baseline_start = serializers.DateField(allow_null=True)
    baseline_finish = serializers.DateField(allow_null=True)
    start = serializers.DateField(source="task.early_start")
    finish = serializers.DateField(source="task.early_finish")
    start_slip = serializers.IntegerField(allow_null=True)
    finish_slip = serializers.IntegerField(allow_null=True)
    slipped = serializers.BooleanField()


class ItemSerializer(serializers.ModelSerializer):
    class Meta:
        model = ChecklistItem
        fields = ["id", "text", "owner", "due_date", "evidence_note", "signed_name", "signed_at"]


class StageSerializer(serializers.ModelSerializer):
    items = ItemSerializer(many=True, read_only=True)
    gate_open = serializers.BooleanField(read_only=True)
    blockers = serializers.SerializerMethodField()

    class Meta:
        model = Stage
        fields = ["id", "kind", "order", "rollback_steps", "gate_open", "gate_opened_at"]
        fields += ["blockers", "items"]

    def get_blockers(self, stage) -> list[str]:
        return actions.gate_blockers(stage)


class ProbeSerializer(serializers.ModelSerializer):
    class Meta:
        model = Probe
        fields = ["id", "name", "kind", "host", "port", "called_aet", "calling_aet", "url"]
        fields += ["timeout_s", "scheduled", "last_ok", "last_at", "last_detail"]
        read_only_fields = ["last_ok", "last_at", "last_detail"]


class ProbeResultSerializer(serializers.ModelSerializer):
    class Meta:
        model = ProbeResult
        fields = ["id", "probe", "at", "ok", "detail", "ms", "trigger"]


class PlanSerializer(serializers.ModelSerializer):
    integration_name = serializers.CharField(source="integration.name", read_only=True)
    stages = StageSerializer(many=True, read_only=True)
    probes = ProbeSerializer(many=True, read_only=True)

    class Meta:
        model = CutoverPlan
        fields = ["id", "integration", "integration_name", "notes", "created_at", "stages"]
        fields += ["probes"]
        read_only_fields = ["created_at"]


class CloudViewerSerializer(serializers.ModelSerializer):
    class Meta:
        model = CloudViewer
        fields = ["id", "name", "vendor", "version", "url", "notes"]


class CaseSerializer(serializers.ModelSerializer):
    capability_name = serializers.CharField(source="capability.name", read_only=True)

    class Meta:
        model = ViewerTestCase
        fields = ["id", "viewer", "capability", "capability_name", "result", "notes"]
        fields += ["tested_at", "gap_owner", "gap_solution", "gap_resolved"]
        read_only_fields = ["viewer", "capability", "tested_at"]


class CriterionSerializer(serializers.Serializer):
    key = serializers.CharField()
    group = serializers.CharField()
    label = serializers.CharField()
    op = serializers.CharField()
    threshold = serializers.FloatField()
    unit = serializers.CharField()
    value = serializers.FloatField(allow_null=True)
    available = serializers.BooleanField()
    met = serializers.BooleanField()
    state = serializers.CharField()
    note = serializers.CharField()
    evidence_url = serializers.CharField()


class ReadinessSerializer(serializers.Serializer):
    go = serializers.BooleanField()
    verdict = serializers.CharField()
    reasons = serializers.ListField(child=serializers.CharField())
    criteria = CriterionSerializer(many=True)
    checked_at = serializers.DateTimeField()
