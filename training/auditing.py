def redact(value):
    """auditlog's mask for PHI fields: whether a value was given, never the value."""
    return "[redacted]" if value and value != "None" else ""
