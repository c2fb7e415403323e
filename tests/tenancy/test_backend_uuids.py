"""The backend reads ``uuid`` values with its own typecaster (``tenancy.rls_backend``): what it
returns must be indistinguishable from ``uuid.UUID``, through raw cursors and the ORM."""

import copy
import pickle
import uuid

import pytest
from django.db import connection

from tenancy.models import User

pytestmark = pytest.mark.django_db


def fetch(statement: str, params=None):
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.fetchone()


@pytest.mark.parametrize("value", [uuid.uuid4(), uuid.UUID(int=0), uuid.UUID(int=2**128 - 1)])
def test_a_uuid_column_reads_as_the_same_uuid(value):
    (read,) = fetch("SELECT %s::uuid", [str(value)])
    assert type(read) is uuid.UUID
    assert read == value
    assert hash(read) == hash(value)
    assert str(read) == str(value)
    assert read.version == value.version
    assert read.is_safe is uuid.SafeUUID.unknown
    assert pickle.loads(pickle.dumps(read)) == value  # noqa: S301 (our own bytes)
    assert copy.deepcopy(read) == value
    with pytest.raises(TypeError):
        read.int = 1  # immutable, like any UUID


def test_upper_case_and_null_and_arrays():
    value = uuid.uuid4()
    upper, null, array, empty = fetch(
        "SELECT upper(%s)::uuid, NULL::uuid, ARRAY[%s::uuid, NULL], '{}'::uuid[]",
        [str(value), str(value)],
    )
    assert upper == value
    assert null is None
    assert array == [value, None]
    assert type(array[0]) is uuid.UUID
    assert empty == []


def test_orm_rows_carry_uuid_keys(user, tenant):
    loaded = User.objects.get(pk=user.pk)
    assert type(loaded.pk) is uuid.UUID
    assert loaded.pk == user.pk
    assert type(loaded.tenant_id) is uuid.UUID
    assert loaded.tenant_id == tenant.pk
    assert User.objects.filter(pk__in=[loaded.pk]).get() == user
