"""Start-up configuration: read once from the environment, validated, typed."""

from config.settings import Settings, SettingsError, load_settings

__all__ = ["Settings", "SettingsError", "load_settings"]
