"""Email over SMTP (aiosmtplib): a plain-text body with an HTML alternative.

Connection security is `starttls` (default, port 587), `tls` (implicit TLS, port 465) or
`none` (port 25; for a relay on localhost). Failures: a 4xx reply (421 service not
available, 451 local error, 452 no space…) and lost or refused connections are worth a
retry; a 5xx reply (550 mailbox unavailable, 554…) and failed authentication (535) are
permanent. The password is only ever handed to aiosmtplib; replies that reach an error
message go through the redactor first.
"""

from __future__ import annotations

import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any, Literal

import aiosmtplib
import structlog
from pydantic import Field, SecretStr, field_validator, model_validator

from apiwatch.alerting.channels.base import ChannelConfig, DeliveryError
from apiwatch.alerting.channels.redact import Redactor
from apiwatch.alerting.channels.render import html_body, summary, text_body
from apiwatch.alerting.model import Notification

KIND = "email"
DEFAULT_PORTS = {"starttls": 587, "tls": 465, "none": 25}

log = structlog.get_logger("apiwatch.alerting")


class EmailConfig(ChannelConfig):
    host: str = Field(min_length=1)
    port: int | None = Field(default=None, ge=1, le=65535)
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str | None = None
    password: SecretStr | None = None
    sender: str = Field(alias="from")
    to: list[str] = Field(min_length=1)
    subject_prefix: str = "[apiwatch]"
    validate_certs: bool = True
    timeout_s: float = Field(default=30.0, gt=0, le=300)

    @field_validator("sender")
    @classmethod
    def _sender(cls, value: str) -> str:
        if "@" not in value:
            raise ValueError("must be an email address")
        return value

    @field_validator("to")
    @classmethod
    def _recipients(cls, value: list[str]) -> list[str]:
        if any("@" not in address for address in value):
            raise ValueError("every recipient must be an email address")
        return value

    @model_validator(mode="after")
    def _credentials(self) -> EmailConfig:
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password go together: set both or neither")
        return self


def render(notification: Notification, config: EmailConfig) -> EmailMessage:
    message = EmailMessage()
    prefix = f"{config.subject_prefix} " if config.subject_prefix else ""
    # Header values may not hold line breaks; a title or key with one must not break sending.
    message["Subject"] = " ".join(f"{prefix}{summary(notification)}".split())
    message["From"] = config.sender
    message["To"] = ", ".join(config.to)
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["Message-ID"] = make_msgid(domain="apiwatch")
    message["X-Apiwatch-Group"] = " ".join(notification.group_key.split())
    message.set_content(text_body(notification))
    message.add_alternative(html_body(notification), subtype="html")
    return message


def _reply_error(what: str, code: int, reply: str, redact: Redactor) -> DeliveryError:
    detail = redact(" ".join(str(reply).split())[:300])
    return DeliveryError(
        f"{what}: SMTP {code} {detail}".rstrip(), retryable=400 <= code < 500, status=code
    )


class EmailChannel:
    kind = KIND

    def __init__(self, config: EmailConfig) -> None:
        self.config = config
        self.name = config.name or KIND
        password = config.password.get_secret_value() if config.password else None
        self._redact = Redactor([password])

    def __repr__(self) -> str:
        return f"EmailChannel(name={self.name!r})"

    async def send(self, notification: Notification) -> None:
        config = self.config
        what = f"email {self.name!r}"
        try:
            refused, _ = await aiosmtplib.send(
                render(notification, config),
                hostname=config.host,
                port=config.port or DEFAULT_PORTS[config.security],
                username=config.username,
                password=config.password.get_secret_value() if config.password else None,
                use_tls=config.security == "tls",
                start_tls=config.security == "starttls",
                validate_certs=config.validate_certs,
                timeout=config.timeout_s,
            )
        except aiosmtplib.SMTPAuthenticationError as error:
            # 454 is "temporary authentication failure"; 535 and the rest are bad credentials.
            retryable = 400 <= error.code < 500
            raise DeliveryError(
                f"{what}: authentication failed, SMTP {error.code}"
                + ("" if retryable else " (check username and password)"),
                retryable=retryable,
                status=error.code,
            ) from None
        except aiosmtplib.SMTPRecipientsRefused as error:
            codes = [r.code for r in error.recipients]
            retryable = any(400 <= code < 500 for code in codes)
            first = error.recipients[0] if error.recipients else None
            raise DeliveryError(
                f"{what}: every recipient refused"
                + (f", SMTP {first.code} {self._redact(first.message)[:200]}" if first else ""),
                retryable=retryable,
                status=first.code if first else None,
            ) from None
        except aiosmtplib.SMTPResponseException as error:
            raise _reply_error(what, error.code, error.message, self._redact) from None
        except aiosmtplib.SMTPNotSupported as error:
            # The server lacks what the configuration asks for (STARTTLS, AUTH): fix the config.
            raise DeliveryError(f"{what}: {self._redact(error.message)}", retryable=False) from None
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
            # Refused, reset, timed out, disconnected: the server may be back in a minute.
            message = getattr(error, "message", None) or str(error)
            # Except what no retry changes: a certificate that does not verify, and a bare
            # SMTPException for STARTTLS or AUTH the server does not offer.
            permanent = isinstance(error, ssl.SSLCertVerificationError) or (
                "CERTIFICATE_VERIFY_FAILED" in message
                or (type(error) is aiosmtplib.SMTPException and "not supported" in message)
            )
            raise DeliveryError(
                f"{what}: {type(error).__name__}: {self._redact(message)}",
                retryable=not permanent,
            ) from None
        if refused:
            # Delivered to the others; a retry would send them duplicates.
            log.warning("email_recipients_refused", channel=self.name, refused=len(refused))


def build(config: dict[str, Any]) -> EmailChannel:
    return EmailChannel(EmailConfig.model_validate(config))
