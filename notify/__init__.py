"""Time and delivery: durable timers, the transactional outbox, its outbound channels (signed webhook, FHIR
Communication) and the worker that runs both."""
