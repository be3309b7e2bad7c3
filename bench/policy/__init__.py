"""Policy engine benchmark."""
