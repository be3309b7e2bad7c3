"""cdsctl package."""
