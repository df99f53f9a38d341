"""finwatch: bank and crypto transaction exports in, ranked and explained suspicious-activity leads out."""

__version__ = "0.1.0"

__all__ = ["__version__"]
