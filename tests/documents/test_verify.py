"""POST /api/documents/verify/: ours and unmodified, or why not."""

import io

import pytest
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

from documents.models import Document
from documents.sealing import identity_from_p12, new_self_signed_p12, seal_pdf
from documents.selectors import document_read
from tests.fixtures import run_worker

pytestmark = pytest.mark.django_db


def verify(client, data: bytes, name="certificate.pdf"):
    upload = io.BytesIO(data)
    upload.name = name
    return client.post("/api/documents/verify/", {"file": upload}, format="multipart")


@pytest.fixture
def sealed(approved_contract) -> tuple[Document, bytes]:
    run_worker()
    document = Document.objects.get()
    return document, document_read(document=document)


def test_an_untouched_certificate_is_valid(client, sealed):
    document, data = sealed
    response = verify(client, data)
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["valid"] is True
    assert body["ours"] is True
    assert (body["document"], body["sha256"]) == (str(document.pk), document.sha256)
    assert body["sealed_at"] is not None
    assert body["reason"] == "Sealed by this service and unmodified."


def test_one_changed_byte_is_detected(client, sealed):
    _, data = sealed
    changed = bytearray(data)
    position = data.index(b"/Producer")  # inside the signed range, in the document info
    changed[position + 2] ^= 0x01
    body = verify(client, bytes(changed)).json()
    assert (body["valid"], body["ours"], body["document"]) == (False, True, None)
    assert body["reason"] == "The bytes changed after sealing: the seal's digest does not match."


def test_an_incremental_update_after_the_seal_is_detected(client, sealed):
    _, data = sealed
    writer = IncrementalPdfFileWriter(io.BytesIO(data))
    writer.root["/Lang"] = generic.TextStringObject("fr")
    writer.update_root()
    updated = io.BytesIO()
    writer.write(updated)
    body = verify(client, updated.getvalue()).json()
    assert (body["valid"], body["ours"]) == (False, True)
    assert body["reason"] == (
        "Content was added after sealing (an incremental update follows the seal)."
    )


def test_another_keys_seal_is_not_ours(client, sealed):
    from documents import rendering
    from documents.selectors import certificate_inputs

    document, _ = sealed
    pdf = rendering.render_certificate(
        certificate_inputs(workflow_instance_id=document.workflow_instance_id)
    )
    stranger = identity_from_p12(new_self_signed_p12("CLM workflow service document seal"))
    body = verify(client, seal_pdf(pdf, reason="forged", identity=stranger)).json()
    assert (body["valid"], body["ours"]) == (False, False)
    assert body["reason"] == "The PDF is sealed by another key, not by this service."


def test_an_unsealed_pdf_and_garbage_are_invalid_not_errors(client, sealed):
    from documents import rendering
    from documents.selectors import certificate_inputs

    document, data = sealed
    pdf = rendering.render_certificate(
        certificate_inputs(workflow_instance_id=document.workflow_instance_id)
    )
    assert verify(client, pdf).json()["reason"] == "The PDF carries no seal."
    for junk in (b"not a pdf at all", b"%PDF-1.7\n" + b"\x00" * 50, data[: len(data) // 2]):
        response = verify(client, junk)
        assert response.status_code == 200
        assert response.json()["valid"] is False


def test_no_file_is_a_400(client):
    response = client.post("/api/documents/verify/", {}, format="multipart")
    assert response.status_code == 400
    assert "file" in response.json()["fields"]
    assert client.post("/api/documents/verify/", {"file": "x"}, format="json").status_code == 415


def test_verification_needs_a_login(api_client, sealed):
    assert verify(api_client, sealed[1]).status_code == 401
