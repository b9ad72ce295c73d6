from django.db import models


class Order(models.Model):
    """The model whose creation sends a webhook: `seq` numbers the triggers, so the
    receiver counts each one (bench/receiver.py reads `"seq":` from the body)."""

    seq = models.IntegerField()
    created = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"order {self.seq}"
