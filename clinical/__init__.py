"""clinical package."""
