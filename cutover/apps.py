from django.apps import AppConfig


class CutoverConfig(AppConfig):
    name = "cutover"
    verbose_name = "Roadmap & cutover"

    def ready(self):
        from core.events import subscribe_local
        from cutover.follow import ReadinessFollower

        subscribe_local(ReadinessFollower())
