"""mlops-kit: one config and one code base from notebook to a production ML platform."""

__version__ = "0.1.0"
