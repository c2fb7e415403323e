"""How a contract's large values are stored (migration ``contracts.0008``)."""

import pytest
from django.db import connection

from contracts.models import Contract, ContractRevision
from tests.factories import ContractFactory

LARGE = ((Contract, "text"), (ContractRevision, "content"))


def _server_has_lz4() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'"
        )
        return cursor.fetchone()[0]


def _compression(model, field: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT attcompression FROM pg_attribute"
            " WHERE attrelid = %s::regclass AND attname = %s",
            [model._meta.db_table, model._meta.get_field(field).column],
        )
        return cursor.fetchone()[0]


@pytest.mark.django_db
def test_large_values_are_compressed_with_lz4_where_the_server_has_it():
    expected = "l" if _server_has_lz4() else ""
    assert [_compression(model, field) for model, field in LARGE] == [expected, expected]


@pytest.mark.django_db
def test_a_long_text_comes_back_whole(tenant, user):
    text = "".join(
        f"{number}. The Supplier shall deliver lot {number} on time. " for number in range(400)
    )
    contract = ContractFactory(tenant=tenant, created_by=user, text=text)
    assert Contract.objects.get(pk=contract.pk).text == text
