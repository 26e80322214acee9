"""Field kinds the models declare beyond Django's own."""

from django.db import models


class HexDigestField(models.BinaryField):
    """A digest kept as its bytes (bytea on PostgreSQL: 33 B a row where the hex text took
    65, on a billion per-instance rows) and read and written as lowercase hex, so code
    and lookups see the same strings as before."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("editable", True)
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        kwargs.pop("editable", None)
        return name, path, args, kwargs

    def from_db_value(self, value, expression, connection):
        return self.to_python(value)

    def to_python(self, value):
        if isinstance(value, bytes | bytearray | memoryview):
            return bytes(value).hex()
        return value

    def get_prep_value(self, value):
        if isinstance(value, str):
            return bytes.fromhex(value)
        return super().get_prep_value(value)

    def value_to_string(self, obj):
        return self.value_from_object(obj)
