"""Typed errors. Every message a user can cause names the key, the value and the fix.

Provider errors carry an `error_type` (written to records.parquet) and say whether
the runner may retry them. Refusals and invalid requests are never retried: the
same request would be refused again, and each try may cost money.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar


class BenchError(Exception):
    """Base of everything t2i-bench raises on purpose."""


class ConfigError(BenchError):
    """A problem in the user's configuration, found before any request is sent (exit code 2)."""

    def __init__(self, key: str, value: Any, fix: str) -> None:
        self.key, self.value, self.fix = key, value, fix
        super().__init__(f"config error: {key}={value!r}: {fix}")


class ProviderError(BenchError):
    error_type: ClassVar[str] = "provider_error"
    retryable: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        http_status: int | None = None,
        retry_after_s: float | None = None,
        provider_request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.http_status = http_status
        self.retry_after_s = retry_after_s
        self.provider_request_id = provider_request_id


class AuthError(ProviderError):
    error_type = "auth"


class InvalidRequestError(ProviderError):
    error_type = "invalid_request"


class UnknownModelError(InvalidRequestError):
    """The host does not serve the model asked for (retired, mistyped, or not on this host)."""

    error_type = "unknown_model"


class RefusedError(ProviderError):
    """Content-policy refusal: recorded as status=refused, never retried."""

    error_type = "refused"


class RateLimitedError(ProviderError):
    error_type = "rate_limited"
    retryable = True


class ServerError(ProviderError):
    error_type = "server"
    retryable = True


class ProviderTimeoutError(ProviderError):
    error_type = "timeout"
    retryable = True


class TransportError(ProviderError):
    """Connection refused/reset before an HTTP answer: nothing was generated, safe to retry."""

    error_type = "transport"
    retryable = True


class MalformedResponseError(ProviderError):
    """The provider answered, but not in the documented shape (or the image does not decode)."""

    error_type = "malformed_response"


class DownloadError(ProviderError):
    """The generation succeeded (and may be billed) but its image could not be fetched.

    The adapter retries the fetch itself; the runner never re-submits the generation
    because of it (that would buy the image again). `billed_cost_usd` is what the
    provider reported for the generation, NaN when it did not say.
    """

    error_type = "download"

    def __init__(self, message: str, *, billed_cost_usd: float = math.nan, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.billed_cost_usd = billed_cost_usd


class BudgetExceeded(BenchError):
    """Raised inside the runner when the next request could push spend past max_cost_usd."""
