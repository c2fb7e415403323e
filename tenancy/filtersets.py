import django_filters

from config.filters import StrictBooleanFilter
from tenancy.models import User, UserRole


class UserFilterSet(django_filters.FilterSet):
    is_active = StrictBooleanFilter()
    is_tenant_admin = StrictBooleanFilter()

    class Meta:
        model = User
        fields = []


class UserRoleFilterSet(django_filters.FilterSet):
    # A plain UUID filter, not a model choice: another tenant's user id must answer exactly like
    # an unknown id (an empty page), not "Select a valid choice" vs. 200, revealing that it exists.
    user = django_filters.UUIDFilter(field_name="user_id")
    role = django_filters.CharFilter(max_length=50)

    class Meta:
        model = UserRole
        fields = []
