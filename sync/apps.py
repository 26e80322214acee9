from django.apps import AppConfig


class SyncAppConfig(AppConfig):
    name = "sync"
    verbose_name = "Hybrid period: sync and priors"

    def ready(self):
        from core.events import subscribe_local
        from sync.follow import follow_engine

        subscribe_local(follow_engine)
