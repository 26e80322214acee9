"""The hybrid tests use the migration tests' engine settings, S3 server, seeded PACS and
workers (imported fixtures are registered here as if defined here)."""

from tests.migration.conftest import (  # noqa: F401
    _clean_engine_redis,
    bucket,
    engine_settings,
    migration_s3,
    migration_worker,
    mixed_pacs,
    start_worker,
)
