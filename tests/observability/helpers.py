"""Reading `/metrics` the way Prometheus does (prometheus-client's text parser)."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families


class Samples(dict):
    """`/metrics` parsed: (sample name, frozenset of label pairs) -> value."""

    def value(self, name: str, **labels: str) -> float:
        """One sample's value; 0 when absent (a labelled counter not yet incremented)."""
        return self.get((name, frozenset(labels.items())), 0.0)

    def total(self, name: str, **labels: str) -> float:
        """The sum over every sample of `name` whose labels include `labels`."""
        wanted = set(labels.items())
        return sum(v for (n, pairs), v in self.items() if n == name and wanted <= pairs)


def parse(text: str) -> Samples:
    samples = Samples()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def scrape(client, **headers: str) -> Samples:
    response = client.get("/metrics", **headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=")
    return parse(response.content.decode())


class Delta:
    """What a scrape after some traffic adds to a scrape before it (counters are per
    process and live across tests)."""

    def __init__(self, client):
        self.client = client
        self.before = scrape(client)

    def __call__(self) -> Samples:
        after = scrape(self.client)
        keys = set(after) | set(self.before)
        return Samples({key: after.get(key, 0.0) - self.before.get(key, 0.0) for key in keys})
