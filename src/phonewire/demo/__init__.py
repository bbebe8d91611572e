"""The demo: a bot that needs no cloud service, and the app that serves it."""

from phonewire.demo.bot import DemoBot

__all__ = ["DemoBot"]
