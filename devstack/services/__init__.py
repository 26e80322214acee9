"""Local service processes (Redis, PACS, S3, DICOMweb) for `make run`, tests and benchmarks.

Each service is a `ManagedProcess`: it picks free loopback ports, writes its config
into its own directory, starts, waits until it answers, and stops on `stop()`.
"""
