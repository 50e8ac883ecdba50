"""apiwatch: a self-hosted monitor for the third-party APIs a product depends on."""

__version__ = "0.1.0"
