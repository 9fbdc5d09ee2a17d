"""supz: active/standby application hosting on supervisor and keepalived."""

__version__ = "0.1.0"
