"""Running writers at the same time in tests: threads on a real (committed) database."""

from __future__ import annotations

import threading

from django.db import connection


class Concurrently:
    """Run functions in threads started together; each closes its own connection; errors surface."""

    def __init__(self, *functions):
        self.functions = functions
        self.errors: list[BaseException] = []
        self.barrier = threading.Barrier(len(functions))

    def _run(self, function):
        try:
            self.barrier.wait()
            function()
        except BaseException as error:  # re-raised in the test's thread
            self.errors.append(error)
        finally:
            connection.close()

    def __enter__(self):
        self.threads = [threading.Thread(target=self._run, args=(f,)) for f in self.functions]
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        for thread in self.threads:
            thread.join(timeout=300)
        assert not any(thread.is_alive() for thread in self.threads), "a thread did not finish"
        if self.errors:
            raise self.errors[0]


def tokens_at_once(integration_pk, count: int = 2) -> list[str]:
    """`count` threads, each with its own copy of the integration read before any of them
    starts, ask for an access token at the same moment; the tokens they got."""
    from integrations.models import Integration
    from integrations.oauth.tokens import get_access_token

    copies = [Integration.objects.get(pk=integration_pk) for _ in range(count)]
    results: list[str] = []
    with Concurrently(*(lambda mine=mine: results.append(get_access_token(mine)) for mine in copies)):
        pass
    return results
