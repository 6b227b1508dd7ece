"""Typed keys for what the application holds."""

from aiohttp import web

from services.bootstrap import Deps

# What every service is given (``services.bootstrap``), built when the application starts.
DEPS = web.AppKey("deps", Deps)
