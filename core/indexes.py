"""Index kinds the models declare beyond Django's own."""

from django.db import models


class EqualityIndex(models.Index):
    """For columns looked up by equality only (a UID): a hash index on PostgreSQL, which
    keeps a 4-byte hash per row where a B-tree keeps the whole value (34 B a row against
    87 B on 58-character UIDs), and a B-tree elsewhere. One column only."""

    def create_sql(self, model, schema_editor, using="", **kwargs):
        if schema_editor.connection.vendor == "postgresql":
            using = " USING hash"
        return super().create_sql(model, schema_editor, using=using, **kwargs)
