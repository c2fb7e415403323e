"""Writes of admin-style viewsets, through the owning app's services.

A viewset names its input serializer and implements ``service_create(data)``,
``service_update(instance, data)`` and ``service_delete(instance)``; the response is the
viewset's (output) serializer. The schema side comes with ``service_write_schema``.
"""

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import status
from rest_framework.response import Response


class ServiceWriteMixin:
    input_serializer_class = None
    # Set for responses that need a fresh read with the selector's joins (nested rows).
    reread_after_write = False

    def service_create(self, data: dict):
        raise NotImplementedError

    def service_update(self, instance, data: dict):
        raise NotImplementedError

    def service_delete(self, instance) -> None:
        raise NotImplementedError

    def _input(self, **kwargs):
        data = self.input_serializer_class(context=self.get_serializer_context(), **kwargs)
        data.is_valid(raise_exception=True)
        return data.validated_data

    def _output(self, obj, **kwargs) -> Response:
        if self.reread_after_write:
            obj = self.get_queryset().get(pk=obj.pk)
        return Response(self.get_serializer(obj).data, **kwargs)

    def create(self, request, *args, **kwargs):
        obj = self.service_create(self._input(data=request.data))
        return self._output(obj, status=status.HTTP_201_CREATED)

    def update(self, request, *args, partial=False, **kwargs):
        instance = self.get_object()
        obj = self.service_update(instance, self._input(data=request.data, partial=partial))
        return self._output(obj)

    def partial_update(self, request, *args, **kwargs):
        return self.update(request, *args, partial=True, **kwargs)

    def perform_destroy(self, instance) -> None:
        self.service_delete(instance)


def service_write_schema(
    input_serializer, output_serializer, *, created_serializer=None, update_description=None
):
    """The request and response bodies of a ``ServiceWriteMixin`` viewset's writes."""
    described = {"description": update_description} if update_description else {}
    return extend_schema_view(
        create=extend_schema(
            request=input_serializer,
            responses={201: created_serializer or output_serializer},
        ),
        update=extend_schema(request=input_serializer, responses=output_serializer, **described),
        partial_update=extend_schema(
            request=input_serializer, responses=output_serializer, **described
        ),
    )
