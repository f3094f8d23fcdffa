"""`turnout record`: live exchanges through the gateway, written as golden fixtures for one provider.

The gateway runs in this process against a recording proxy (`proxy.py`) that forwards to the real
backend and keeps every byte of each upstream request and answer. `cases.py` turns the golden suite's
scenarios (or one request) into requests to send, `session.py` sends them, `fixtures.py` turns what
the proxy saw into redacted fixture files in tests/golden's layout, and `command.py` is the command.
"""

from __future__ import annotations

from engine.record.command import RecordOptions, run_record

__all__ = ["RecordOptions", "run_record"]
