"""The health check of a `saml` integration (called by `health.checks.check_integration`).

1. The IdP metadata (`integrations/saml.py`): it must be reachable (else `unhealthy`,
   issue `provider_unavailable`) and parse, name the configured entity and hold a signing
   certificate (else `unhealthy`, `config_invalid`).
2. The IdP's current signing certificate (the valid one lasting longest: an IdP rolling
   its key publishes both): `degraded` within `SAML_CERT_EXPIRY_WARNING_DAYS` (30) of its
   expiry and `unhealthy` once every one has expired, both with issue `certificate_expiring`
   and details `{"certificate", "subject", "not_after", "days_left", ...}`.
3. With the SAML bearer grant (`config.token_url`): the grant's own certificate, by the same
   rule; then a token is minted (or the stored one reused) through `get_access_token`, and
   `config.health_check_url`, when set, is called with it like any other check.

The result is the worst of these; on a tie the certificate's finding is reported. Once the
metadata has loaded, the result also says what was looked for and not seen (its
`observed_kinds`: `provider_unavailable`, `config_invalid`, `certificate_expiring`, plus what
the endpoint check observed when it was called), so an issue opened earlier resolves while
another finding (an expiring certificate) is reported; a kind that a finding not reported
shows is never counted as cleared.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from django.utils import timezone

from common.exceptions import ApplicationError, UpstreamError
from integrations import saml
from integrations.grants import saml_bearer
from integrations.models import ConnectionIssue, Integration
from integrations.oauth.client import OAuthError
from integrations.oauth.tokens import ReauthorizationRequired, get_access_token
from integrations.services import integration_secrets

from . import app_settings
from .checks import DEGRADED, HEALTHY, UNHEALTHY, CheckResult

logger = logging.getLogger(__name__)

Kind = ConnectionIssue.Kind
SEVERITY = {"healthy": 0, "degraded": 1, "unhealthy": 2}


#: what metadata that loaded shows, present or absent: the IdP answered, the config is usable,
#: the certificates were read
METADATA_KINDS: tuple[str, ...] = (Kind.PROVIDER_UNAVAILABLE, Kind.CONFIG_INVALID, Kind.CERTIFICATE_EXPIRING)


@dataclasses.dataclass(frozen=True)
class Finding:
    status: str
    error: str = ""
    issue_kind: str = ""
    issue_details: dict[str, Any] = dataclasses.field(default_factory=dict)
    #: the kind this finding shows when another detector records it (a mint that was tried:
    #: integrations/detectors.py): not reported here, and never counted as cleared either
    recorded_kind: str = ""

    @property
    def shown_kinds(self) -> set[str]:
        return {kind for kind in (self.issue_kind, self.recorded_kind) if kind} if self.status != HEALTHY else set()


def _days_left(not_after: datetime, now: datetime) -> int:
    """Whole days until expiry: part of a day left counts as a day; since it, whole days (0 the first)."""
    days = (not_after - now).total_seconds() / 86400
    return math.ceil(days) if days > 0 else math.trunc(days)


def _expiry_finding(*, not_after: datetime, now: datetime, what: str, renew: str, details: dict[str, Any]) -> Finding:
    days = _days_left(not_after, now)
    facts = {**details, "not_after": not_after.isoformat(), "days_left": days}
    date = not_after.date().isoformat()
    if not_after <= now:
        return Finding(UNHEALTHY, f"{what} expired on {date}: {renew}", Kind.CERTIFICATE_EXPIRING, facts)
    if not_after - now <= timedelta(days=app_settings.saml_cert_expiry_warning_days()):
        when = f"in {days} day{'s' if days != 1 else ''}"
        return Finding(DEGRADED, f"{what} expires {when} ({date}): {renew}", Kind.CERTIFICATE_EXPIRING, facts)
    return Finding(HEALTHY)


def _idp_finding(metadata: saml.IdpMetadata, now: datetime, *, inline: bool) -> Finding:
    current = metadata.current_certificate(now)
    renew = "the IdP must publish its new certificate in its metadata" + (
        ", then update config.idp_metadata." if inline else "."
    )
    if current is None:
        latest = max(metadata.certificates, key=lambda cert: cert.not_after)
        if latest.not_after > now:  # none valid yet, none expired for good
            start = min(cert.not_before for cert in metadata.certificates).isoformat(timespec="seconds")
            return Finding(
                UNHEALTHY, f"No IdP signing certificate is valid yet (the first from {start}).", Kind.CONFIG_INVALID
            )
        current = latest
    details = {
        "certificate": "idp_signing",
        "subject": current.subject,
        "sha256_fingerprint": current.sha256_fingerprint,
    }
    return _expiry_finding(
        not_after=current.not_after, now=now, what="The IdP's signing certificate", renew=renew, details=details
    )


def _bearer_certificate_finding(integration: Integration, now: datetime) -> Finding:
    own = saml_bearer.certificate_not_after(integration)
    if own is None:
        return Finding(HEALTHY)  # no readable certificate: minting says what is wrong
    subject, not_after = own
    return _expiry_finding(
        not_after=not_after,
        now=now,
        what="The SAML bearer grant's certificate",
        renew="register a new certificate at the authorization server and update credentials.private_key "
        "and credentials.certificate.",
        details={"certificate": "saml_bearer", "subject": subject},
    )


def _mint_finding(integration: Integration) -> Finding:
    attempts = integration.token_refresh_attempts
    try:
        get_access_token(integration)  # minted under the row lock, or the stored one while fresh
    except (ReauthorizationRequired, OAuthError, UpstreamError) as error:
        # A mint that was tried recorded its own outcome as an issue (integrations/detectors.py):
        # the check shows it without counting it a second time.
        tried = integration.token_refresh_attempts != attempts
        if isinstance(error, ReauthorizationRequired):
            kind = Kind.REAUTHORIZATION_REQUIRED
        elif isinstance(error, OAuthError):
            kind = Kind.CREDENTIALS_REJECTED
        else:
            kind = Kind.PROVIDER_UNAVAILABLE
        text = f"Could not get an access token: {error.message}"
        return Finding(UNHEALTHY, text, "" if tried else kind, recorded_kind=kind if tried else "")
    except ApplicationError as error:
        return Finding(UNHEALTHY, f"Could not get an access token: {error.message}", Kind.CONFIG_INVALID)
    return Finding(HEALTHY)


def _worst(*findings: Finding) -> Finding:
    worst = findings[0]
    for finding in findings[1:]:
        if SEVERITY[finding.status] > SEVERITY[worst.status]:
            worst = finding
    return worst


def check_saml(integration: Integration, *, endpoint_check: Callable[[Integration], CheckResult]) -> CheckResult:
    """Check a `saml` integration now; never raises. `endpoint_check` is the provider-endpoint
    check of `health.checks` (the unreadable-credentials rule, `health_check_url`)."""
    try:
        return _check(integration, endpoint_check)
    except Exception:  # a bug must not stop the run: report it, logged with its traceback
        logger.exception("SAML health check of integration %s failed unexpectedly", integration.pk)
        return CheckResult(integration.pk, UNHEALTHY, timezone.now(), error="Internal error during the check.")


def _check(integration: Integration, endpoint_check: Callable[[Integration], CheckResult]) -> CheckResult:
    if integration.provider_info is None or not integration.credentials_readable:
        return endpoint_check(integration)  # it reports these
    secrets, pairs = integration_secrets(integration)
    config = integration.config if isinstance(integration.config, dict) else {}
    inline, url = saml.metadata_source(config, integration.credentials)
    timing: dict[str, Any] = {}

    def result(finding: Finding, **extra: Any) -> CheckResult:
        return CheckResult(
            integration.pk,
            finding.status,
            timezone.now(),
            error=finding.error,
            issue_kind=finding.issue_kind,
            issue_details=finding.issue_details,
            secrets=secrets,
            basic_pairs=pairs,
            **{**timing, **extra},
        )

    started = time.perf_counter()
    try:
        metadata = saml.load_metadata(integration, timeout=app_settings.timeout())
    except saml.MetadataUnavailable as error:
        elapsed = int((time.perf_counter() - started) * 1000)
        finding = Finding(UNHEALTHY, error.message, Kind.PROVIDER_UNAVAILABLE, {"idp_metadata_url": url})
        return result(finding, http_status=error.http_status, response_time_ms=elapsed)
    except saml.MetadataInvalid as error:
        return result(Finding(UNHEALTHY, error.message, Kind.CONFIG_INVALID, {"field": error.field}))
    if url and not inline:
        timing = {"response_time_ms": int((time.perf_counter() - started) * 1000)}

    now = datetime.now(UTC)
    findings = [_idp_finding(metadata, now, inline=bool(inline))]

    def loaded(finding: Finding, looked_for: tuple[str, ...] = METADATA_KINDS) -> CheckResult:
        """The result once the metadata has loaded (healthy: every kind was looked for, none seen)."""
        observed = None if finding.status == HEALTHY else _observed(looked_for, findings, finding.issue_kind)
        return result(finding, observed_kinds=observed)

    if not saml.bearer_configured(config):
        return loaded(findings[0])
    findings.append(_bearer_certificate_finding(integration, now))
    finding = _worst(*findings)
    if finding.status == UNHEALTHY:
        return loaded(finding)
    findings.append(_mint_finding(integration))
    if findings[-1].status == UNHEALTHY or not config.get("health_check_url"):
        return loaded(_worst(*findings))
    endpoint = endpoint_check(integration)  # health_check_url with the minted token
    looked_for = (*METADATA_KINDS, *(endpoint.observed_kinds or ()))
    if SEVERITY[endpoint.status] > SEVERITY[finding.status]:
        return dataclasses.replace(endpoint, observed_kinds=_observed(looked_for, findings, endpoint.issue_kind))
    return dataclasses.replace(
        loaded(finding, looked_for), response_time_ms=endpoint.response_time_ms, http_status=endpoint.http_status
    )


def _observed(looked_for: tuple[str, ...], findings: list[Finding], reported_kind: str) -> tuple[str, ...]:
    """`looked_for` without the kinds that findings show beside the one reported: those were
    seen, so they are not cleared (nor detected: a result reports one issue)."""
    hidden = set().union(*(finding.shown_kinds for finding in findings)) - {reported_kind}
    return tuple(dict.fromkeys(kind for kind in looked_for if kind not in hidden))
