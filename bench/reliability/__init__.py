"""Reliability runs: sustained load and injected faults against real `cdsctl serve` processes on PostgreSQL."""
