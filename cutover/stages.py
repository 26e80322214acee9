"""Integration cutover stages, their default checklists and rollback steps, as data.

A new cutover plan gets one stage of each kind, in this order, each with these items.
A stage's go/no-go gate opens only when every item of it is signed and the gate of the
stage before it is open.
"""

STAGES = [
    ("prepare", "Prepare"),
    ("parallel_run", "Parallel run"),
    ("switch", "Switch"),
    ("verify", "Verify bidirectional flow"),
    ("disable_legacy", "Disable legacy interface"),
]
STAGE_CHOICES = STAGES

CHECKLISTS = {
    "prepare": [
        "Interface specification agreed with the system owner",
        "Cloud endpoint configured (addresses, AE titles or URLs, certificates)",
        "Test messages exchanged in the test environment",
        "Rollback contact and window agreed",
    ],
    "parallel_run": [
        "Messages flow to legacy and cloud side by side",
        "Daily reconciliation shows no missing or different messages",
        "Clinical owner reviewed a sample of results",
    ],
    "switch": [
        "Change approved by the change advisory board",
        "Interface engine routes to the cloud endpoint",
        "Connectivity probe passes after the switch",
    ],
    "verify": [
        "Orders/results flow cloud → system verified",
        "System → cloud flow verified (reports, updates, merges)",
        "No backlog in the interface engine queue",
    ],
    "disable_legacy": [
        "Legacy interface disabled",
        "Legacy interface configuration archived",
        "System owner signed the final acceptance",
    ],
}

ROLLBACK = {
    "prepare": "Nothing to roll back: the legacy interface is still the only live one.",
    "parallel_run": "Stop the copy to the cloud endpoint; legacy keeps running unchanged.",
    "switch": "Re-point the interface engine route to the legacy endpoint; replay queued "
    "messages from the switch time.",
    "verify": "As for the switch: re-point to legacy and replay messages since the switch.",
    "disable_legacy": "Re-enable the archived legacy interface configuration.",
}

PROBE_FOR_PROTOCOL = {"hl7v2": "hl7", "dicom": "dicom_echo", "fhir": "http"}


def label(kind):
    return dict(STAGES).get(kind, kind)
