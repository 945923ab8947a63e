"""No secret reaches a log: API tokens are cut out of every access and error log line.

A token can arrive in a request line (``/dashboard?token=...``), a referer, a
cookie (``ledger_token=...``) or an ``Authorization: Bearer ...`` header, and
any of them can end up in gunicorn's access log (which docker-compose turns
on), in its error log (a malformed request line is quoted there) or in a
traceback. The filter here rewrites each record before any handler formats
it, whatever ``access_log_format`` an operator chooses.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from gunicorn.glogging import Logger

__all__ = ["RedactingLogger", "RedactSecrets", "redact"]

#: ``token=`` (query, cookie, form) and bearer credentials, also URL-encoded.
_SECRET = re.compile(r"(?i)(token=|token%3d|bearer\s+|bearer%20|bearer\+)[^\s&\"';,]+")


def redact(text: str) -> str:
    """``text`` with every token value replaced by ``[redacted]``."""
    return _SECRET.sub(r"\1[redacted]", text)


class RedactSecrets(logging.Filter):
    """Rewrites a record's message (and traceback) with :func:`redact`."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


class RedactingLogger(Logger):  # type: ignore[misc]  # gunicorn ships no types
    """gunicorn's logger with :class:`RedactSecrets` on its access and error logs."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for log in (self.error_log, self.access_log):
            if not any(isinstance(f, RedactSecrets) for f in log.filters):
                log.addFilter(RedactSecrets())
