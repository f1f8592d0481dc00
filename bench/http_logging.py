"""The HTTP libraries' own loggers: quiet by default, and never a key in their lines.

`hydra.verbose=true` turns every logger to DEBUG, and httpcore's DEBUG lines include
the exceptions of a failed send (an illegal header value shows the header: the key).
So the HTTP loggers stay at WARNING unless the user asks for them with
`bench.http_debug=true`, and their records go through a filter that redacts the keys
and any authorization-like header value either way.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

from bench.redact import redact

# Parents and the children that log (a filter on a parent logger does not see its children's records).
HTTP_LOGGERS = (
    "httpx",
    "httpcore",
    "httpcore.connection",
    "httpcore.http11",
    "httpcore.http2",
    "httpcore.proxy",
    "httpcore.socks",
    "hpack",
    "aiohttp",
    "aiohttp.client",
)
_AUTH_VALUE = re.compile(
    r"(?i)((?:proxy-)?authorization|x-api-key|api-key|x-key|x-goog-api-key)(['\"]?\s*[:=,]\s*(?:b?['\"])?)"
    r"(?:(bearer|key|token|basic)\s+)?[^\s'\",)\]}]+"
)


def redact_auth_headers(text: str) -> str:
    """`Authorization: Bearer abc` -> `Authorization: Bearer ***` (also in reprs of header lists)."""
    return _AUTH_VALUE.sub(
        lambda m: f"{m.group(1)}{m.group(2)}{m.group(3) + ' ' if m.group(3) else ''}***", text
    )


class RedactingFilter(logging.Filter):
    """Rewrites a record's message with keys and auth header values replaced by ***."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__("bench-redact")
        self.secrets = [s for s in secrets if s]

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: leave the record to logging's own error path
            return True
        cleaned = redact_auth_headers(redact(message, self.secrets))
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and record.exc_info[1] is not None:
            # The traceback text is rendered later from exc_info: render it now, redacted.
            text = logging.Formatter().formatException(record.exc_info)
            record.exc_info, record.exc_text = None, redact_auth_headers(redact(text, self.secrets))
        return True


def configure_http_logging(*, debug: bool, secrets: Iterable[str]) -> None:
    """WARNING (or DEBUG with bench.http_debug) on the HTTP loggers, each with one redacting filter."""
    redactor = RedactingFilter(secrets)
    for name in HTTP_LOGGERS:
        logger = logging.getLogger(name)
        if name in ("httpx", "httpcore", "hpack", "aiohttp"):
            logger.setLevel(logging.DEBUG if debug else logging.WARNING)
        for old in [f for f in logger.filters if isinstance(f, RedactingFilter)]:
            logger.removeFilter(old)
        logger.addFilter(redactor)
