from django.core.management.base import BaseCommand, CommandError

from core import health


class Command(BaseCommand):
    help = "Check that the database and Redis answer; one clear line if not."

    def handle(self, *args, **options):
        for name, check, variable in (
            ("database", health.check_database, "DATABASE_URL"),
            ("Redis", health.check_redis, "REDIS_URL"),
        ):
            result = health.timed(check)
            if not result["ok"]:
                raise CommandError(f"{name} unreachable ({variable}): {result['detail']}")
            self.stdout.write(f"{name}: ok ({result['ms']} ms)")
