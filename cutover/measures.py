"""Measures: the one this app offers to others, and lazy access to the other apps' ones.

`cutover_progress()` is the seam other apps read. `external(path)` imports another app's
measure function when it is asked for, so a missing app means "not available", never an
import error at start-up.
"""

import importlib
import logging

log = logging.getLogger(__name__)


class MeasureUnavailableError(Exception):
    """The app that provides a measure is not built or its function failed."""


def external(dotted):
    """The function at `"package.module.function"`, or MeasureUnavailableError."""
    module_name, _, name = dotted.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise MeasureUnavailableError(f"{module_name} is not available") from exc
    func = getattr(module, name, None)
    if func is None:
        raise MeasureUnavailableError(f"{dotted} is not available")
    return func


def read(dotted, *args, **kwargs):
    """Call another app's measure; any failure is logged and becomes MeasureUnavailableError."""
    func = external(dotted)
    try:
        return func(*args, **kwargs)
    except Exception as exc:
        log.warning("measure %s failed: %s", dotted, exc)
        raise MeasureUnavailableError(f"{dotted} failed: {exc}") from exc


def cutover_progress():
    """{"stages", "signed_stages"}: integration cutover stages, and those whose gate is open
    (every checklist item signed and the go/no-go gate opened)."""
    from cutover.models import Stage

    return {
        "stages": Stage.objects.count(),
        "signed_stages": Stage.objects.filter(gate_opened_at__isnull=False).count(),
    }
