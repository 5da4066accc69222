"""crossroute: any AI coding agent, any model provider."""

__version__ = "0.1.0"
