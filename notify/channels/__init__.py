"""Outbound channels: each delivers one outbox message over HTTP and reports the outcome, never raising for a
delivery fault (`notify.port.Channel`)."""
