"""The standard PACS-to-cloud roadmap, as data.

Each task: code, name, kind (task | milestone | buffer), duration in working days, owner
role, dependencies written as in the CSV (`"AS2"` finish-to-start, `"AS2 SS+2"`
start-to-start two working days after, `"MG2 FS-5"` a five-day lead), and optionally a
live measure with its parameters (see `cutover.binding.MEASURES`).
`deadline_days` places a deadline that many working days after the project start.
"""

NAME = "PACS-to-cloud roadmap"
GO_LIVE = "GL1"


def _t(code, name, duration, after=(), kind="task", owner="", **extra):
    return {
        "code": code,
        "name": name,
        "duration": 0 if kind == "milestone" else duration,
        "after": list(after),
        "kind": kind,
        "owner": owner,
        **extra,
    }


def _m(code, name, after=(), **extra):
    return _t(code, name, 0, after, kind="milestone", **extra)


WORKSTREAMS = [
    (
        "Assess the environment",
        [
            _m("AS1", "Kick-off"),
            _t(
                "AS2",
                "Inventory the legacy PACS (C-FIND crawl)",
                10,
                ["AS1"],
                owner="Migration engineer",
            ),
            _t("AS3", "Catalogue integrations, viewers and access", 8, ["AS2 SS+2"], owner="PM"),
            _t(
                "AS4", "Measure volumes, formats and growth", 3, ["AS2"], owner="Migration engineer"
            ),
            _m("AS5", "Assessment complete", ["AS3", "AS4"]),
        ],
    ),
    (
        "Design the cloud architecture",
        [
            _t("DE1", "Target architecture and security design", 10, ["AS5"], owner="Architect"),
            _t(
                "DE2",
                "Tag mapping and de-duplication rules",
                5,
                ["DE1 SS+3"],
                owner="Migration engineer",
            ),
            _m("DE3", "Design signed off", ["DE1", "DE2"]),
        ],
    ),
    (
        "Create the roadmap",
        [
            _t("RM1", "Plan waves, windows and priorities", 5, ["DE3"], owner="PM"),
            _m("RM2", "Roadmap approved", ["RM1"]),
        ],
    ),
    (
        "Configure cloud infrastructure",
        [
            _t(
                "IN1",
                "Provision storage, network and identity",
                10,
                ["DE3"],
                owner="Cloud engineer",
            ),
            _t(
                "IN2",
                "Configure destinations and credentials",
                3,
                ["IN1"],
                owner="Migration engineer",
            ),
            _m("IN3", "Infrastructure verified", ["IN2"]),
        ],
    ),
    (
        "Ingest and validate historical images",
        [
            _t("MG1", "Pilot wave", 5, ["IN3", "RM2"], owner="Migration engineer"),
            _t(
                "MG2",
                "Bulk migration waves",
                40,
                ["MG1"],
                owner="Migration engineer",
                measure="migration.waves",
            ),
            _t(
                "MG3",
                "Validate fidelity (spot-checks)",
                40,
                ["MG2 SS+5"],
                owner="Migration engineer",
                measure="validation.waves",
            ),
            _t("MG4", "Delta migration", 5, ["MG2"], owner="Migration engineer"),
            _m("MG5", "Historical images migrated", ["MG3", "MG4"]),
        ],
    ),
    (
        "Install and test cloud viewers",
        [
            _t("VW1", "Install cloud viewers", 5, ["IN3"], owner="Viewer engineer"),
            _t("VW2", "Run viewer validation test plans", 10, ["VW1"], owner="Lead users"),
            _m("VW3", "Viewers validated", ["VW2"]),
        ],
    ),
    (
        "Cut over integrations",
        [
            _t(
                "IC1",
                "Prepare interfaces (EMR, RIS, billing)",
                10,
                ["DE3"],
                owner="Integration engineer",
            ),
            _t("IC2", "Parallel run", 15, ["IC1", "IN3"], owner="Integration engineer"),
            _t(
                "IC3",
                "Switch and verify bidirectional flow",
                5,
                ["IC2"],
                owner="Integration engineer",
                measure="cutover.stages",
            ),
            _m("IC4", "Integrations cut over", ["IC3"]),
        ],
    ),
    (
        "Train clinicians",
        [
            _t("TR1", "Train lead users", 5, ["VW1"], owner="Trainer"),
            _t(
                "TR2",
                "Train clinicians",
                20,
                ["TR1"],
                owner="Trainer",
                measure="training.clinicians",
            ),
            _m("TR3", "Clinicians trained", ["TR2"]),
        ],
    ),
    (
        "Support go-live and optimise",
        [
            _t("GL0", "Contingency", 5, ["MG5", "VW3", "IC4", "TR3"], kind="buffer", owner="PM"),
            _m("GL1", "Go-live", ["GL0"], deadline_days=100),
            _t("GL2", "Hypercare (24/7 command center)", 10, ["GL1"], owner="Command center lead"),
            _t("GL3", "Optimise and decommission legacy PACS", 10, ["GL2"], owner="PM"),
            _m("GL4", "Project closed", ["GL3"]),
        ],
    ),
]
