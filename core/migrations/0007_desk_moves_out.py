"""The split of the old `commandcenter` app (issue #14): the go-live desk's 17 models move
to the `desk` app, and the three shared ones keep living here, in `core`.

No row is copied. For the desk's models the database keeps its tables, renamed to the
desk's names (with their indexes), and the migration state moves them: this app forgets
them (state only) and `desk.0001_initial` declares them (state only). The content types
move too, so audit-log entries, admin history and permissions stay attached to their rows.
tests/core/test_app_split.py migrates a database that holds tickets through it.
"""

from django.db import migrations

DESK_MODELS = ['attachment', 'comment', 'escalation', 'escalationpolicy', 'escalationstep', 'handoffnote', 'metricsample', 'monitor', 'notification', 'override', 'priorityrule', 'rotation', 'rotationmember', 'slatarget', 'ticket', 'ticketevent', 'transition']
CORE_MODELS = ['apitoken', 'healthsample', 'phiaccess']


def move_content_types(apps, schema_editor):
    content_type = apps.get_model("contenttypes", "ContentType")
    old = content_type.objects.filter(app_label__in=["commandcenter", "core"])
    old.filter(model__in=DESK_MODELS).update(app_label="desk")
    old.filter(model__in=CORE_MODELS).update(app_label="core")


def restore_content_types(apps, schema_editor):
    content_type = apps.get_model("contenttypes", "ContentType")
    content_type.objects.filter(app_label="desk", model__in=DESK_MODELS).update(app_label="core")


class Migration(migrations.Migration):
    dependencies = [
        ("core", "0006_api_tokens"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.RunPython(move_content_types, restore_content_types),
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RenameIndex(model_name='ticket', new_name='desk_ticket_status_145040_idx', old_name='commandcent_status_53b09b_idx'),
                migrations.RenameIndex(model_name='ticket', new_name='desk_ticket_status_8ba167_idx', old_name='commandcent_status_8a1561_idx'),
                migrations.RenameIndex(model_name='notification', new_name='desk_notifi_user_id_02d22a_idx', old_name='commandcent_user_id_f9d9f4_idx'),
                migrations.AlterModelTable(name='attachment', table='desk_attachment'),
                migrations.AlterModelTable(name='comment', table='desk_comment'),
                migrations.AlterModelTable(name='escalation', table='desk_escalation'),
                migrations.AlterModelTable(name='escalationpolicy', table='desk_escalationpolicy'),
                migrations.AlterModelTable(name='escalationstep', table='desk_escalationstep'),
                migrations.AlterModelTable(name='handoffnote', table='desk_handoffnote'),
                migrations.AlterModelTable(name='metricsample', table='desk_metricsample'),
                migrations.AlterModelTable(name='monitor', table='desk_monitor'),
                migrations.AlterModelTable(name='notification', table='desk_notification'),
                migrations.AlterModelTable(name='override', table='desk_override'),
                migrations.AlterModelTable(name='priorityrule', table='desk_priorityrule'),
                migrations.AlterModelTable(name='rotation', table='desk_rotation'),
                migrations.AlterModelTable(name='rotationmember', table='desk_rotationmember'),
                migrations.AlterModelTable(name='slatarget', table='desk_slatarget'),
                migrations.AlterModelTable(name='ticket', table='desk_ticket'),
                migrations.AlterModelTable(name='ticketevent', table='desk_ticketevent'),
                migrations.AlterModelTable(name='transition', table='desk_transition'),
            ],
            state_operations=[
                migrations.RemoveField(
                    model_name='attachment',
                    name='ticket',
                ),
                migrations.RemoveField(
                    model_name='attachment',
                    name='uploaded_by',
                ),
                migrations.RemoveField(
                    model_name='comment',
                    name='author',
                ),
                migrations.RemoveField(
                    model_name='comment',
                    name='ticket',
                ),
                migrations.RemoveField(
                    model_name='escalation',
                    name='step',
                ),
                migrations.RemoveField(
                    model_name='escalation',
                    name='ticket',
                ),
                migrations.DeleteModel(
                    name='EscalationPolicy',
                ),
                migrations.RemoveField(
                    model_name='escalationstep',
                    name='person',
                ),
                migrations.RemoveField(
                    model_name='escalationstep',
                    name='policy',
                ),
                migrations.RemoveField(
                    model_name='escalationstep',
                    name='rotation',
                ),
                migrations.RemoveField(
                    model_name='handoffnote',
                    name='acknowledged_by',
                ),
                migrations.RemoveField(
                    model_name='handoffnote',
                    name='author',
                ),
                migrations.RemoveField(
                    model_name='handoffnote',
                    name='rotation',
                ),
                migrations.DeleteModel(
                    name='MetricSample',
                ),
                migrations.DeleteModel(
                    name='Monitor',
                ),
                migrations.RemoveField(
                    model_name='notification',
                    name='ticket',
                ),
                migrations.RemoveField(
                    model_name='notification',
                    name='user',
                ),
                migrations.RemoveField(
                    model_name='override',
                    name='created_by',
                ),
                migrations.RemoveField(
                    model_name='override',
                    name='rotation',
                ),
                migrations.RemoveField(
                    model_name='override',
                    name='user',
                ),
                migrations.DeleteModel(
                    name='PriorityRule',
                ),
                migrations.DeleteModel(
                    name='Rotation',
                ),
                migrations.RemoveField(
                    model_name='rotationmember',
                    name='rotation',
                ),
                migrations.RemoveField(
                    model_name='rotationmember',
                    name='user',
                ),
                migrations.DeleteModel(
                    name='SlaTarget',
                ),
                migrations.RemoveField(
                    model_name='ticket',
                    name='assignee',
                ),
                migrations.RemoveField(
                    model_name='ticket',
                    name='reporter',
                ),
                migrations.RemoveField(
                    model_name='ticketevent',
                    name='actor',
                ),
                migrations.RemoveField(
                    model_name='ticketevent',
                    name='ticket',
                ),
                migrations.DeleteModel(
                    name='Transition',
                ),
                migrations.DeleteModel(
                    name='Attachment',
                ),
                migrations.DeleteModel(
                    name='Comment',
                ),
                migrations.DeleteModel(
                    name='Escalation',
                ),
                migrations.DeleteModel(
                    name='EscalationStep',
                ),
                migrations.DeleteModel(
                    name='HandoffNote',
                ),
                migrations.DeleteModel(
                    name='Notification',
                ),
                migrations.DeleteModel(
                    name='Override',
                ),
                migrations.DeleteModel(
                    name='RotationMember',
                ),
                migrations.DeleteModel(
                    name='Ticket',
                ),
                migrations.DeleteModel(
                    name='TicketEvent',
                ),
                ],
        ),
        migrations.RenameIndex(
            model_name='healthsample',
            new_name='core_health_compone_66c32f_idx',
            old_name='commandcent_compone_a37837_idx',
        ),
        migrations.RenameIndex(
            model_name='phiaccess',
            new_name='core_phiacc_what_1dee5b_idx',
            old_name='commandcent_what_5f28cc_idx',
        ),
        migrations.AlterModelTable(
            name='apitoken',
            table=None,
        ),
        migrations.AlterModelTable(
            name='healthsample',
            table=None,
        ),
        migrations.AlterModelTable(
            name='phiaccess',
            table=None,
        ),
    ]
