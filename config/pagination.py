from django.db.models import QuerySet
from rest_framework import pagination

UNIQUE_KEYS = {"pk", "-pk", "id", "-id"}


def stable_order(queryset):
    """Order by the primary key last, so pages never overlap or skip rows.

    A client's ``?ordering=`` on a non-unique field (e.g. ``status``) leaves ties in whatever order
    PostgreSQL picks per query, and ``?ordering=,`` clears the ordering altogether.
    """
    if not isinstance(queryset, QuerySet):
        return queryset
    query = queryset.query
    ordering = list(query.order_by) or (
        list(queryset.model._meta.ordering) if query.default_ordering else []
    )
    if any(isinstance(field, str) and field in UNIQUE_KEYS for field in ordering):
        return queryset
    return queryset.order_by(*ordering, "pk")


class PageNumberPagination(pagination.PageNumberPagination):
    """`?page=` and `?page_size=` (default 50, capped at 200), as docs/api.md fixes."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200

    def paginate_queryset(self, queryset, request, view=None):
        return super().paginate_queryset(stable_order(queryset), request, view)
