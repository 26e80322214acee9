from django.apps import AppConfig


class HybridConfig(AppConfig):
    name = "hybrid"
    verbose_name = "Hybrid period"
