"""PDFs from plain data: pure functions, no queries.

Each renderer takes the canonical inputs (a JSON-able dict that ``documents.trail`` builds) and
returns PDF bytes. The same inputs give the same bytes: the creation date is the inputs' own
time, never the clock. ``inputs_sha256`` names the inputs, so regenerating from the same trail is
checkable without comparing PDFs.
"""

import datetime
from pathlib import Path

from fpdf import FPDF

from documents.selectors import inputs_sha256

FONT_DIR = Path(__file__).resolve().parent / "fonts"
FONT = "DejaVu"
TITLES = {
    "approval_certificate": "Approval certificate",
    "signed_contract": "Signed contract",
    "contract": "Contract for signature",
}


class _Pdf(FPDF):
    """A4 pages with the bundled Unicode font, a header line and page numbers."""

    def __init__(self, *, title: str, created_at: str):
        super().__init__(format="A4")
        self.doc_title = title
        self.set_creation_date(datetime.datetime.fromisoformat(created_at))
        self.set_title(title)
        self.set_creator("CLM workflow service")
        self.add_font(FONT, "", str(FONT_DIR / "DejaVuSans.ttf"))
        self.add_font(FONT, "B", str(FONT_DIR / "DejaVuSans-Bold.ttf"))
        self.set_auto_page_break(auto=True, margin=18)
        self.set_margins(18, 18, 18)

    def header(self):
        self.set_font(FONT, "", 8)
        self.set_text_color(90, 90, 90)
        self.cell(0, 5, self.doc_title, new_x="LMARGIN", new_y="NEXT")
        self.ln(2)
        self.set_text_color(0, 0, 0)

    def footer(self):
        self.set_y(-12)
        self.set_font(FONT, "", 8)
        self.set_text_color(90, 90, 90)
        self.cell(0, 5, f"Page {self.page_no()}/{{nb}}", align="R")

    def heading(self, text: str, size: int = 15) -> None:
        self.set_font(FONT, "B", size)
        self.multi_cell(0, size * 0.5, text, new_x="LMARGIN", new_y="NEXT")
        self.ln(2)

    def line_of(self, text: str, *, size: int = 10, bold: bool = False) -> None:
        self.set_font(FONT, "B" if bold else "", size)
        self.multi_cell(0, size * 0.5, text, new_x="LMARGIN", new_y="NEXT")

    def field(self, label: str, value) -> None:
        self.line_of(f"{label}: {_text(value)}")

    def paragraph(self, text: str) -> None:
        self.set_font(FONT, "", 10)
        self.multi_cell(0, 5, text or "(no text)", new_x="LMARGIN", new_y="NEXT")


def _text(value) -> str:
    if value is None or value == "":
        return "—"
    return str(value)


def _person(person: dict | None) -> str:
    if not person:
        return "—"
    return f"{person['name']} <{person['email']}>"


def _contract_summary(pdf: _Pdf, contract: dict) -> None:
    pdf.heading("Contract", 12)
    for label, key in (
        ("Title", "title"),
        ("Contract id", "id"),
        ("Type", "contract_type"),
        ("Value", "value"),
        ("Currency", "currency"),
        ("Counterparty", "counterparty"),
        ("Department", "department"),
        ("Region", "region"),
        ("Start date", "start_date"),
        ("End date", "end_date"),
        ("Revision", "revision"),
        ("Content hash (SHA-256)", "content_hash"),
    ):
        pdf.field(label, contract.get(key))
    pdf.ln(3)


def render_certificate(inputs: dict) -> bytes:
    """The approval certificate: the contract, the approved revision, every stage's decisions
    and SLA outcome, and the ids of the audit rows of the trail."""
    pdf = _Pdf(title=TITLES["approval_certificate"], created_at=inputs["workflow"]["completed_at"])
    pdf.add_page()
    pdf.heading(f"Approval certificate: {inputs['contract']['title']}")
    _contract_summary(pdf, inputs["contract"])
    workflow = inputs["workflow"]
    pdf.heading("Workflow", 12)
    pdf.field("Workflow instance", workflow["id"])
    pdf.field("Definition", f"{workflow['definition']} (version {workflow['version']})")
    pdf.field("Started", workflow["started_at"])
    pdf.field("Completed", workflow["completed_at"])
    pdf.ln(3)
    for stage in inputs["stages"]:
        pdf.line_of(
            f"Stage {stage['sequence']}: {stage['stage_name']} ({stage['approval_type']}) — "
            f"{stage['status']}",
            size=11,
            bold=True,
        )
        pdf.field("SLA", stage["sla"])
        for decision in stage["decisions"]:
            pdf.line_of(
                f"• {decision['status']} by {_person(decision['decided_by'])}"
                f" on behalf of {_person(decision['on_behalf_of'])}"
                f" via {decision['via']} at {_text(decision['decided_at'])}"
                f" (approver entry {decision['approver']}, revision {_text(decision['revision'])})",
                size=9,
            )
            pdf.line_of(f"  Comments: {_text(decision['comments'])}", size=9)
        pdf.ln(2)
    pdf.heading("Audit trail", 12)
    pdf.line_of(f"{len(inputs['audit_rows'])} audit rows, in order:", size=9)
    pdf.line_of(" ".join(inputs["audit_rows"]), size=7)
    pdf.ln(3)
    pdf.field("Inputs hash (SHA-256)", inputs_sha256(inputs))
    return bytes(pdf.output())


def render_contract(inputs: dict) -> bytes:
    """The contract as signers read it: its fields and its text, at one revision."""
    pdf = _Pdf(title=TITLES["contract"], created_at=inputs["created_at"])
    _contract_pages(pdf, inputs["contract"])
    return bytes(pdf.output())


def _contract_pages(pdf: _Pdf, contract: dict) -> None:
    pdf.add_page()
    pdf.heading(contract["title"])
    _contract_summary(pdf, contract)
    pdf.heading("Text", 12)
    pdf.paragraph(contract["text"])


def render_signed_contract(inputs: dict) -> bytes:
    """The contract, a signature page and a certificate of completion (signers, times, IP
    addresses and the hash of every version shown)."""
    pdf = _Pdf(title=TITLES["signed_contract"], created_at=inputs["completed_at"])
    _contract_pages(pdf, inputs["contract"])
    pdf.add_page()
    pdf.heading("Signatures")
    for signer in inputs["signers"]:
        pdf.line_of(signer["typed_name"], size=16, bold=True)
        pdf.line_of(f"{signer['name']} <{signer['email']}>", size=9)
        pdf.line_of(f"Signed electronically at {signer['signed_at']}", size=9)
        pdf.ln(5)
    pdf.add_page()
    pdf.heading("Certificate of completion")
    pdf.field("Signature request", inputs["request"])
    pdf.field("Order", inputs["order"])
    pdf.field("Requested", inputs["requested_at"])
    pdf.field("Completed", inputs["completed_at"])
    pdf.ln(3)
    for signer in inputs["signers"]:
        pdf.line_of(f"{signer['position']}. {signer['name']} <{signer['email']}>", bold=True)
        pdf.field("Typed name", signer["typed_name"])
        pdf.field("Link sent", signer["sent_at"])
        pdf.field("Viewed", signer["viewed_at"])
        pdf.field("Signed", signer["signed_at"])
        pdf.field("IP address", signer["ip_address"])
        pdf.field("User agent", signer["user_agent"])
        pdf.field("Document shown (SHA-256)", signer["document_sha256"])
        pdf.ln(2)
    pdf.field("Inputs hash (SHA-256)", inputs_sha256(inputs))
    return bytes(pdf.output())


RENDERERS = {
    "approval_certificate": render_certificate,
    "signed_contract": render_signed_contract,
    "contract": render_contract,
}
