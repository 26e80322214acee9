from django.apps import AppConfig


class CommandCenterConfig(AppConfig):
    name = "commandcenter"
    verbose_name = "Command center"
