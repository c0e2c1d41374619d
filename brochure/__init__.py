"""brochure: branded, print-ready, accessible PDF handouts from Markdown topics."""

__version__ = "0.1.0"
