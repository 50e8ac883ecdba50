"""Examples of apiwatch.inbound in a product of one's own: a protected app and clients."""
