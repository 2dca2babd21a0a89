"""cli_devops: fleet health for Cloud Provider X (CPX) from the command line."""

__version__ = "0.3.0"
