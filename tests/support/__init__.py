"""Helpers the tests share: a real server, signed webhooks, echo apps, bots and the wire client.

``tests/conftest.py`` puts ``tests/`` on ``sys.path``, so tests import these as ``support.<module>``.
"""
