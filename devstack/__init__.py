"""The developer stack: `make run`, the tests' and benchmarks' local services, synthetic
DICOM. Installed only when DEVSTACK is on (the default while DEBUG); production code
imports nothing from here (tests/core/test_architecture.py checks it)."""
