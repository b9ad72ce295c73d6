"""SAML IdP metadata (integrations/saml.py) and the health of SAML integrations (health/saml.py).

Metadata URLs are served by a real local HTTP server (tests/webhooks/receiver.py);
`ALLOW_PRIVATE_URLS` is on in the test settings unless a test switches it off.
"""

from datetime import timedelta
from http import HTTPStatus

import pytest

from health.checks import DEGRADED, HEALTHY, UNHEALTHY, check_integration
from integrations import providers, saml
from integrations.models import Integration
from integrations.services import integration_create
from integrations.validation import IntegrationInvalid
from tests.api_errors import field_errors
from tests.integrations.factories import IntegrationFactory
from tests.webhooks.receiver import Receiver, Reply

from .saml_helpers import IDP_ENTITY_ID, NAMESPACES, entity, key_descriptor, key_pair, metadata_xml

pytestmark = pytest.mark.django_db

SAML_PROVIDERS = [p.name for p in providers.provider_list() if providers.SAML in p.auth_types]
#: what each SAML provider's config needs beside the metadata
BASE_CONFIG = {"workday": {"tenant": "acme"}, "custom": {}}


@pytest.fixture
def served():
    """served(body, status=200) -> the URL of a real local server answering it to every GET."""
    servers = []

    def serve(body: str | bytes, status: int = HTTPStatus.OK) -> str:
        server = Receiver().start()
        server.default = Reply(
            status=status,
            body=body.encode() if isinstance(body, str) else body,
            headers={"Content-Type": "application/samlmetadata+xml"},
        )
        servers.append(server)
        return server.url.replace("/hook", "/saml/metadata")

    yield serve
    for server in servers:
        server.stop()


def saml_integration(organization, provider="custom", **config):
    return integration_create(
        organization=organization,
        name=f"{provider} SAML",
        provider=provider,
        auth_type="saml",
        config={**BASE_CONFIG[provider], **config},
        credentials={},
    )


# --- parsing ------------------------------------------------------------------------------


def test_good_metadata_gives_the_entity_id_and_the_signing_certificate():
    pair = key_pair(valid_for=timedelta(days=200))
    metadata = saml.parse_metadata(metadata_xml(certs=[pair.cert_b64]), expected_entity_id=IDP_ENTITY_ID)
    assert metadata.entity_id == IDP_ENTITY_ID
    [cert] = metadata.certificates
    assert cert.not_after == pair.not_after
    assert cert.not_before < cert.not_after
    assert cert.subject == "CN=idp.example.test"
    assert len(cert.sha256_fingerprint) == 64


def test_a_key_descriptor_without_use_signs_and_an_encryption_one_does_not():
    signing, encryption = key_pair(label="a"), key_pair(label="b", valid_for=timedelta(days=30))
    xml = metadata_xml(certs=[]).replace(
        "<md:SingleSignOnService",
        key_descriptor(encryption.cert_b64, use="encryption")
        + key_descriptor(signing.cert_b64, use=None)
        + "<md:SingleSignOnService",
    )
    [cert] = saml.parse_metadata(xml).certificates
    assert cert.not_after == signing.not_after


def test_entity_id_mismatch_is_refused():
    with pytest.raises(saml.MetadataInvalid) as caught:
        saml.parse_metadata(metadata_xml("https://other-idp.example.test"), expected_entity_id=IDP_ENTITY_ID)
    assert caught.value.field == "idp_entity_id"
    assert "https://other-idp.example.test" in caught.value.message and IDP_ENTITY_ID in caught.value.message


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol9 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
]>
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="&lol9;"/>"""

EXTERNAL_ENTITY = """<?xml version="1.0"?>
<!DOCTYPE md [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="&xxe;"/>"""

EXTERNAL_DTD = """<?xml version="1.0"?>
<!DOCTYPE md SYSTEM "http://127.0.0.1:1/evil.dtd">
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="x"/>"""


@pytest.mark.parametrize("xml", [BILLION_LAUGHS, EXTERNAL_ENTITY, EXTERNAL_DTD], ids=["laughs", "xxe", "dtd"])
def test_entities_and_dtds_are_refused_before_anything_is_expanded(xml):
    with pytest.raises(saml.MetadataInvalid) as caught:
        saml.parse_metadata(xml)
    assert "DTD" in caught.value.message
    assert "root" not in caught.value.message  # refused, not parsed and then found wanting


def test_oversized_metadata_is_refused():
    padding = "<!--" + "x" * saml.MAX_METADATA_BYTES + "-->"
    with pytest.raises(saml.MetadataInvalid, match="larger than 1 MiB"):
        saml.parse_metadata(metadata_xml().replace("</md:EntityDescriptor>", padding + "</md:EntityDescriptor>"))


def test_metadata_without_a_signing_certificate_is_refused():
    with pytest.raises(saml.MetadataInvalid, match="no signing certificate"):
        saml.parse_metadata(metadata_xml(use="encryption"))
    with pytest.raises(saml.MetadataInvalid, match="no signing certificate"):
        saml.parse_metadata(metadata_xml(certs=[]))


@pytest.mark.parametrize(
    ("xml", "message"),
    [
        ("<md:EntityDescriptor", "not well-formed XML (line 1"),
        ("", "empty"),
        ("<html><body>login</body></html>", "root element is 'html'"),
        (
            f'<md:EntityDescriptor {NAMESPACES} entityID="x"><md:SPSSODescriptor/></md:EntityDescriptor>',
            "IDPSSODescriptor",
        ),
        (f"<md:EntityDescriptor {NAMESPACES}><md:IDPSSODescriptor/></md:EntityDescriptor>", "no entityID"),
        (metadata_xml(certs=["bm90IGEgY2VydGlmaWNhdGU="]), "certificate 1 is not a valid X.509"),
        (metadata_xml(certs=["%%% not base64 %%%"]), "certificate 1 is not a valid X.509"),
        (
            metadata_xml().replace('entityID="', 'validUntil="2020-01-01T00:00:00Z" entityID="'),
            "expired at 2020-01-01T00:00:00+00:00 (validUntil)",
        ),
    ],
    ids=["truncated", "empty", "html", "sp-only", "no-entity-id", "not-a-cert", "not-base64", "valid-until"],
)
def test_unusable_metadata_is_refused_with_a_one_line_reason(xml, message):
    with pytest.raises(saml.MetadataInvalid) as caught:
        saml.parse_metadata(xml)
    assert message in caught.value.message
    assert "\n" not in caught.value.message


def test_an_aggregate_gives_the_named_identity_provider():
    ours, theirs = key_pair(label="a"), key_pair(label="b", valid_for=timedelta(days=90))
    xml = (
        f"<md:EntitiesDescriptor {NAMESPACES}>"
        + entity("https://a.example.test", certs=[ours.cert_b64])
        + entity("https://b.example.test", certs=[theirs.cert_b64])
        + "</md:EntitiesDescriptor>"
    )
    metadata = saml.parse_metadata(xml, expected_entity_id="https://b.example.test")
    assert metadata.entity_id == "https://b.example.test"
    assert metadata.certificates[0].not_after == theirs.not_after
    with pytest.raises(saml.MetadataInvalid, match="describes 2 identity providers: set idp_entity_id"):
        saml.parse_metadata(xml)
    with pytest.raises(saml.MetadataInvalid, match=r"no identity provider with entityID 'https://c\.example\.test'"):
        saml.parse_metadata(xml, expected_entity_id="https://c.example.test")


def test_expired_certificate_parses_but_is_not_current():
    expired = key_pair(valid_for=timedelta(days=-1), valid_since=timedelta(days=400))
    metadata = saml.parse_metadata(metadata_xml(certs=[expired.cert_b64]))
    assert metadata.certificates[0].not_after == expired.not_after
    assert metadata.current_certificate(expired.not_after + timedelta(seconds=1)) is None


def test_certificate_expiring_in_10_days_is_current_until_then():
    soon = key_pair(valid_for=timedelta(days=10))
    metadata = saml.parse_metadata(metadata_xml(certs=[soon.cert_b64]))
    current = metadata.current_certificate(soon.not_after - timedelta(days=9))
    assert current is not None and current.not_after == soon.not_after


# --- validation at create/update ----------------------------------------------------------


def post(api_client, config, credentials=None, provider="custom"):
    return api_client.post(
        "/api/integrations/",
        {
            "name": f"IdP {Integration.objects.count()}",
            "provider": provider,
            "auth_type": "saml",
            "config": {**BASE_CONFIG[provider], **config},
            "credentials": credentials or {},
        },
        format="json",
    )


@pytest.mark.parametrize("provider", SAML_PROVIDERS)
def test_inline_metadata_is_validated_at_create(api_client, provider):
    good = post(api_client, {"idp_metadata": metadata_xml(), "idp_entity_id": IDP_ENTITY_ID}, provider=provider)
    assert good.status_code == HTTPStatus.CREATED, good.json()
    assert good.json()["status"] == "active"
    assert good.json()["config"]["idp_entity_id"] == IDP_ENTITY_ID

    bad = post(api_client, {"idp_metadata": "<md:EntityDescriptor"}, provider=provider)
    assert bad.status_code == HTTPStatus.BAD_REQUEST
    [message] = field_errors(bad)["config.idp_metadata"]
    assert "not well-formed XML" in message


@pytest.mark.parametrize(
    ("config", "field", "message"),
    [
        ({"idp_metadata": BILLION_LAUGHS}, "idp_metadata", "DTD"),
        ({"idp_metadata": metadata_xml(), "idp_entity_id": "https://other.example.test"}, "idp_entity_id", "entityID"),
        ({"idp_metadata": metadata_xml(use="encryption")}, "idp_metadata", "no signing certificate"),
        (
            {"idp_metadata": metadata_xml(), "idp_metadata_url": "https://idp.example.test/md"},
            "idp_metadata",
            "not both",
        ),
        ({"idp_metadata_url": "ftp://idp.example.test/md"}, "idp_metadata_url", "http(s) URL"),
        ({"idp_entity_id": IDP_ENTITY_ID}, "idp_metadata_url", "Provide the IdP metadata"),
        ({}, "idp_metadata_url", "Provide the IdP metadata"),
    ],
    ids=["laughs", "entity-mismatch", "no-signing-cert", "both", "not-http", "no-metadata", "empty"],
)
def test_bad_saml_config_is_a_400_naming_the_field(api_client, config, field, message):
    response = post(api_client, config)
    assert response.status_code == HTTPStatus.BAD_REQUEST, response.json()
    assert message in " ".join(field_errors(response)[f"config.{field}"])
    assert not Integration.objects.exists()


def test_metadata_url_must_be_public_and_https_unless_private_urls_are_allowed(api_client, settings):
    settings.ALLOW_PRIVATE_URLS = False
    for url, message in (
        ("http://127.0.0.1:8080/metadata", "loopback, private"),
        ("https://10.0.0.5/metadata", "loopback, private"),
        ("http://93.184.215.14/metadata", "must be https://"),
    ):
        response = post(api_client, {"idp_metadata_url": url})
        assert response.status_code == HTTPStatus.BAD_REQUEST, url
        assert message in " ".join(field_errors(response)["config.idp_metadata_url"]), response.json()


def test_update_with_bad_inline_metadata_is_refused_and_changes_nothing(api_client, organization):
    xml = metadata_xml()
    integration = saml_integration(organization, idp_metadata=xml)
    response = api_client.patch(
        f"/api/integrations/{integration.pk}/", {"config": {"idp_metadata": "<nope"}}, format="json"
    )
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert "config.idp_metadata" in field_errors(response)
    integration.refresh_from_db()
    assert integration.config["idp_metadata"] == xml


def test_older_integrations_with_the_metadata_in_their_credentials_still_validate_and_check(organization, served):
    """Before the config keys existed the metadata (and an unused `entity_id`) lived in the
    credentials: such a row still saves and is still checked."""
    url = served(metadata_xml())
    integration = integration_create(
        organization=organization,
        name="legacy",
        provider="workday",
        auth_type="saml",
        config={"tenant": "acme"},
        credentials={"entity_id": "urn:acme", "idp_metadata_url": url},
    )
    assert check_integration(integration).status == HEALTHY


# --- health -------------------------------------------------------------------------------


@pytest.mark.parametrize("provider", SAML_PROVIDERS)
def test_every_saml_provider_is_healthy_with_valid_metadata_from_its_url(organization, served, provider):
    pair = key_pair(valid_for=timedelta(days=365))
    url = served(metadata_xml(certs=[pair.cert_b64]))
    integration = saml_integration(organization, provider, idp_metadata_url=url, idp_entity_id=IDP_ENTITY_ID)
    result = check_integration(integration)
    assert result.status == HEALTHY, result.error
    assert result.error == "" and result.issue_kind == ""
    assert result.response_time_ms is not None


def test_inline_metadata_is_healthy(organization):
    result = check_integration(saml_integration(organization, idp_metadata=metadata_xml()))
    assert (result.status, result.error, result.issue_kind) == (HEALTHY, "", "")


def test_certificate_within_30_days_of_expiry_is_degraded_with_certificate_expiring(organization, served):
    soon = key_pair(valid_for=timedelta(days=10))
    integration = saml_integration(organization, idp_metadata_url=served(metadata_xml(certs=[soon.cert_b64])))
    result = check_integration(integration)
    assert result.status == DEGRADED
    assert result.issue_kind == "certificate_expiring"
    assert result.issue_details["days_left"] == 10
    assert result.issue_details["not_after"] == soon.not_after.isoformat()
    assert result.issue_details["certificate"] == "idp_signing"
    assert "expires in 10 days" in result.error


def test_the_warning_window_is_a_setting(organization, settings):
    soon = key_pair(valid_for=timedelta(days=10))
    integration = saml_integration(organization, idp_metadata=metadata_xml(certs=[soon.cert_b64]))
    settings.SAML_CERT_EXPIRY_WARNING_DAYS = 5
    assert check_integration(integration).status == HEALTHY
    settings.SAML_CERT_EXPIRY_WARNING_DAYS = 11
    assert check_integration(integration).status == DEGRADED


def test_expired_certificate_is_unhealthy_with_certificate_expiring(organization, served):
    expired = key_pair(valid_for=timedelta(days=-2), valid_since=timedelta(days=400))
    integration = saml_integration(organization, idp_metadata_url=served(metadata_xml(certs=[expired.cert_b64])))
    result = check_integration(integration)
    assert result.status == UNHEALTHY
    assert result.issue_kind == "certificate_expiring"
    assert result.issue_details["days_left"] == -2
    assert f"expired on {expired.not_after.date().isoformat()}" in result.error


def test_a_rolled_over_certificate_keeps_it_healthy(organization):
    """An IdP rolling its key publishes the old and the new certificate: the new one counts."""
    old = key_pair(label="old", valid_for=timedelta(days=3))
    new = key_pair(label="new", valid_for=timedelta(days=700))
    integration = saml_integration(organization, idp_metadata=metadata_xml(certs=[old.cert_b64, new.cert_b64]))
    assert check_integration(integration).status == HEALTHY


def test_a_certificate_not_valid_yet_is_unhealthy_config_invalid(organization):
    future = key_pair(valid_since=timedelta(days=-3), valid_for=timedelta(days=300))
    result = check_integration(saml_integration(organization, idp_metadata=metadata_xml(certs=[future.cert_b64])))
    assert (result.status, result.issue_kind) == (UNHEALTHY, "config_invalid")
    assert "valid yet" in result.error


def test_unreachable_metadata_url_is_unhealthy_provider_unavailable(organization):
    server = Receiver().start()
    url = server.url
    server.stop()  # nothing listens there any more
    integration = saml_integration(organization, idp_metadata_url=url)
    result = check_integration(integration)
    assert result.status == UNHEALTHY
    assert result.issue_kind == "provider_unavailable"
    assert "Could not fetch the IdP metadata (ConnectionError, 127.0.0.1)" in result.error


def test_metadata_url_answering_an_error_is_unhealthy_provider_unavailable(organization, served):
    integration = saml_integration(organization, idp_metadata_url=served("oops", status=HTTPStatus.SERVICE_UNAVAILABLE))
    result = check_integration(integration)
    assert (result.status, result.issue_kind, result.http_status) == (UNHEALTHY, "provider_unavailable", 503)
    assert "answered HTTP 503" in result.error


def test_slow_metadata_url_times_out(organization, settings):
    settings.HEALTH_CHECK_TIMEOUT = 0.3
    server = Receiver().start()
    server.default = Reply(body=metadata_xml().encode(), delay=2)
    try:
        result = check_integration(saml_integration(organization, idp_metadata_url=server.url))
    finally:
        server.stop()
    assert (result.status, result.issue_kind) == (UNHEALTHY, "provider_unavailable")
    assert "timed out" in result.error


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("<html>Sign in</html>", "root element is 'html'"),
        (metadata_xml("https://someone-else.example.test"), "entityID"),
        (BILLION_LAUGHS, "DTD"),
        (metadata_xml() + "<!--" + "x" * saml.MAX_METADATA_BYTES + "-->", "larger than 1 MiB"),
    ],
    ids=["not-metadata", "entity-mismatch", "laughs", "oversized"],
)
def test_unusable_metadata_at_the_url_is_unhealthy_config_invalid(organization, served, body, message):
    integration = saml_integration(organization, idp_metadata_url=served(body), idp_entity_id=IDP_ENTITY_ID)
    result = check_integration(integration)
    assert (result.status, result.issue_kind) == (UNHEALTHY, "config_invalid")
    assert message in result.error


def test_a_private_metadata_url_is_refused_at_connect_time(organization, served, settings):
    url = served(metadata_xml())
    integration = saml_integration(organization, idp_metadata_url=url)  # saved while private URLs were allowed
    settings.ALLOW_PRIVATE_URLS = False
    result = check_integration(integration)
    assert (result.status, result.issue_kind) == (UNHEALTHY, "config_invalid")
    assert "https://" in result.error  # refused before connecting: http:// to a private address
    integration.config = {**integration.config, "idp_metadata_url": url.replace("http://", "https://")}
    result = check_integration(integration)
    assert (result.status, result.issue_kind) == (UNHEALTHY, "config_invalid")
    assert "not on a public address" in result.error


def test_check_now_records_the_status(api_client, organization):
    soon = key_pair(valid_for=timedelta(days=7))
    integration = saml_integration(organization, idp_metadata=metadata_xml(certs=[soon.cert_b64]))
    response = api_client.post(f"/api/integrations/{integration.pk}/health/check/")
    assert response.status_code == HTTPStatus.OK
    assert response.json()["health_status"] == "degraded"
    assert "expires in 7 days" in response.json()["check"]["error"]
    integration.refresh_from_db()
    assert integration.health_status == Integration.HealthStatus.DEGRADED


def test_a_row_written_around_validation_is_reported_not_raised(organization):
    integration = IntegrationFactory(
        organization=organization, provider="custom", auth_type="saml", config={}, credentials={}
    )
    result = check_integration(integration)
    assert (result.status, result.issue_kind) == (UNHEALTHY, "config_invalid")
    assert "No IdP metadata" in result.error


def test_integration_create_without_metadata_names_the_config_key(organization):
    with pytest.raises(IntegrationInvalid) as caught:
        saml_integration(organization)
    assert "idp_metadata_url" in caught.value.errors["config"]
