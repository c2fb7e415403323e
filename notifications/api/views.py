from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from config.viewsets import ServiceWriteMixin, service_write_schema
from notifications import selectors, services
from notifications.api import serializers
from notifications.filtersets import NotificationFilterSet
from notifications.models import Notification, WebhookEndpoint, WebhookFormat
from tenancy.capabilities import WEBHOOKS_MANAGE
from tenancy.permissions import capability_required
from tenancy.scoping import TenantScopedViewSetMixin

NO_STORE = {"Cache-Control": "no-store"}  # responses carrying a secret


@extend_schema(tags=["notifications"])
class NotificationViewSet(TenantScopedViewSetMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    """The caller's in-app notifications, newest first. Another user's notification is a 404."""

    queryset = Notification.objects.all()
    serializer_class = serializers.NotificationSerializer
    filterset_class = NotificationFilterSet

    def scoped_queryset(self, tenant):
        return selectors.notification_list_for_user(user=self.request.user)

    @extend_schema(request=None, responses=serializers.NotificationSerializer)
    @action(detail=True, methods=["post"])
    def read(self, request, pk=None):
        """Mark one notification read (idempotent)."""
        notification = services.notification_mark_read(notification=self.get_object())
        return Response(serializers.NotificationSerializer(notification).data)

    @extend_schema(request=None, responses=serializers.ReadAllOutputSerializer)
    @action(detail=False, methods=["post"], url_path="read-all", filterset_class=None)
    def read_all(self, request):
        """Mark all of the caller's notifications read."""
        updated = services.notification_mark_all_read(user=request.user)
        return Response({"updated": updated})

    @extend_schema(responses=serializers.UnreadCountSerializer)
    @action(detail=False, methods=["get"], url_path="unread-count", filterset_class=None)
    def unread_count(self, request):
        return Response({"unread": selectors.notification_unread_count(user=request.user)})

    @extend_schema(methods=["GET"], responses=serializers.PreferencesSerializer)
    @extend_schema(
        methods=["PUT"],
        request=serializers.PreferencesSerializer,
        responses=serializers.PreferencesSerializer,
    )
    @action(detail=False, methods=["get", "put"], filterset_class=None)
    def preferences(self, request):
        """Email on or off per notification type (in-app notifications are always on)."""
        if request.method == "PUT":
            data = serializers.PreferencesSerializer(data=request.data)
            data.is_valid(raise_exception=True)
            services.email_preferences_set(user=request.user, email=data.validated_data["email"])
        return Response({"email": selectors.email_preferences(user=request.user)})


@extend_schema(tags=["admin: webhooks"])
@service_write_schema(
    serializers.WebhookEndpointInputSerializer,
    serializers.WebhookEndpointSerializer,
    created_serializer=serializers.WebhookEndpointCreatedSerializer,
    update_description=(
        "Change url, events, secret or is_active; re-activating resets failures. A secret set "
        "here replaces the current one at once (and ends a rotation's overlap)."
    ),
)
class WebhookEndpointViewSet(
    ServiceWriteMixin,
    TenantScopedViewSetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Webhook endpoints of the tenant (`webhooks.manage`). Each delivery is a POST carrying
    `X-Event-Id` (the same on every retry) and `X-Event-Type`, signed twice: Standard Webhooks
    (`webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64 HMAC-SHA256 of
    "{id}.{timestamp}.{body}">`) and `X-Signature: sha256=<hex HMAC-SHA256 of the body>`.
    Failures are retried with exponential backoff; the endpoint is disabled after repeated
    failures."""

    queryset = WebhookEndpoint.objects.all()
    selector = selectors.webhook_list
    serializer_class = serializers.WebhookEndpointSerializer
    input_serializer_class = serializers.WebhookEndpointInputSerializer
    permission_classes = [capability_required(WEBHOOKS_MANAGE)]

    def service_create(self, data):
        """The response carries the secret, this once (``WebhookEndpointCreatedSerializer``)."""
        user = self.request.user
        return services.webhook_create(
            tenant=user.tenant,
            created_by=user,
            url=data["url"],
            events=data["events"],
            secret=data.get("secret"),
            is_active=data.get("is_active", True),
            format=data.get("format", WebhookFormat.STANDARD),
        )

    def create(self, request, *args, **kwargs):
        """Create an endpoint; the response carries the secret, this once."""
        endpoint = self.service_create(self._input(data=request.data))
        body = serializers.WebhookEndpointCreatedSerializer(endpoint).data
        return Response(body, status=status.HTTP_201_CREATED, headers=NO_STORE)

    def service_update(self, instance, data):
        return services.webhook_update(endpoint=instance, updated_by=self.request.user, **data)

    def service_delete(self, instance):
        services.webhook_delete(endpoint=instance, deleted_by=self.request.user)

    @extend_schema(request=None, responses=serializers.WebhookSecretRotatedSerializer)
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request, pk=None):
        """A new secret, shown only in this response; the previous one also signs every delivery
        for 24 hours (rotating again within them drops the older previous secret)."""
        endpoint = services.webhook_rotate_secret(
            endpoint=self.get_object(), rotated_by=request.user
        )
        body = serializers.WebhookSecretRotatedSerializer(endpoint).data
        return Response(body, headers=NO_STORE)

    @extend_schema(responses=serializers.DeliverySerializer(many=True))
    @action(detail=True, methods=["get"])
    def deliveries(self, request, pk=None):
        """The endpoint's delivery log, newest first."""
        page = self.paginate_queryset(selectors.delivery_log(endpoint=self.get_object()))
        return self.get_paginated_response(serializers.DeliverySerializer(page, many=True).data)
