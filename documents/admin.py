"""Documents and signature requests in the admin: read-only, with download links."""

from django.contrib import admin
from django.http import Http404, HttpResponse
from django.urls import path, reverse
from django.utils.html import format_html

from documents import selectors
from documents.models import Document, SignatureRequest, Signer
from tenancy.admin_scoping import ReadOnlyAdminMixin, ReadOnlyInline, TenantScopedAdmin


def download_link(document: Document) -> str:
    url = reverse("admin:documents_document_download", args=[document.pk])
    return format_html('<a href="{}">Download PDF</a>', url)


class DocumentInline(ReadOnlyInline):
    model = Document
    fields = ["kind", "revision", "sha256", "size", "created_at", "download"]
    readonly_fields = fields

    @admin.display(description="file")
    def download(self, document):
        return download_link(document)


class SignatureRequestInline(ReadOnlyInline):
    model = SignatureRequest
    fields = ["status", "order", "revision", "created_at", "expires_at", "finished_at"]
    readonly_fields = fields
    show_change_link = True


class SignerInline(ReadOnlyInline):
    model = Signer
    fields = ["position", "name", "email", "status", "sent_at", "viewed_at", "signed_at"]
    readonly_fields = fields


@admin.register(Document)
class DocumentAdmin(ReadOnlyAdminMixin, TenantScopedAdmin):
    list_display = ["contract", "kind", "revision", "size", "created_at", "download"]
    list_filter = ["kind"]
    list_select_related = ["contract"]
    search_fields = ["contract__title", "sha256"]
    exclude = ["storage_name"]

    @admin.display(description="file")
    def download(self, document):
        return download_link(document)

    def get_urls(self):
        download = self.admin_site.admin_view(self.download_view)
        return [
            path("<uuid:pk>/download/", download, name="documents_document_download"),
            *super().get_urls(),
        ]

    def download_view(self, request, pk):
        document = self.get_queryset(request).filter(pk=pk).first()
        if document is None or not self.has_view_permission(request, document):
            raise Http404
        try:
            data = selectors.document_read(document=document)
        except selectors.DocumentIntegrityError:
            return HttpResponse(
                "The stored file does not match its recorded SHA-256.",
                status=409,
                content_type="text/plain",
            )
        response = HttpResponse(data, content_type="application/pdf")
        response["Content-Disposition"] = f'attachment; filename="{document.kind}-{pk}.pdf"'
        return response


@admin.register(SignatureRequest)
class SignatureRequestAdmin(ReadOnlyAdminMixin, TenantScopedAdmin):
    list_display = ["contract", "status", "order", "revision", "created_at", "finished_at"]
    list_filter = ["status", "order"]
    list_select_related = ["contract"]
    search_fields = ["contract__title"]
    inlines = [SignerInline]
