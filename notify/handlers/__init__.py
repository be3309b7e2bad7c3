"""Timer handlers of the live path: escalation rungs coming due and holds running out."""
