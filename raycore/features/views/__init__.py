"""Feature view definitions, one module per business domain."""
