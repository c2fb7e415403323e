from django.db import models


class Contract(models.Model):
    """The business object the approval process is about (linked as the process artifact)."""

    title = models.CharField(max_length=200)
    contract_type = models.CharField(max_length=20)
    value = models.DecimalField(max_digits=14, decimal_places=2)

    class Meta:
        permissions = [
            ("approve_legal", "Can approve contracts as legal"),
            ("approve_finance", "Can approve contracts as finance"),
            ("approve_ceo", "Can approve contracts as executive"),
        ]

    def __str__(self):
        return self.title
