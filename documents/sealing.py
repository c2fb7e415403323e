"""The service's document seal: a PAdES signature over every PDF it generates, and its check.

The seal identity is a private key with its certificate: production names a PKCS#12 file
(``DOCUMENT_SEAL_P12``, ``DOCUMENT_SEAL_P12_PASSWORD``); a local run gets a key and a self-signed
certificate created once under ``.data/`` (as ``config.secret_key`` does for SECRET_KEY). A PDF is
"ours and unmodified" when a signature in it was made by that certificate, its digest matches the
signed bytes, and it covers the whole file (nothing was appended after sealing).
"""

import datetime
import functools
import hashlib
import io
import os
import secrets
import warnings
from dataclasses import dataclass
from pathlib import Path

from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID
from django.conf import settings
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.registry import SimpleCertificateStore

from config.database import BASE_DIR

with warnings.catch_warnings():
    # pyHanko imports cryptography's DSA support, which warns on every import; no seal uses DSA.
    warnings.filterwarnings("ignore", message="DSA is deprecated")
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign import signers
    from pyhanko.sign.fields import SigSeedSubFilter
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko.sign.validation.errors import SignatureValidationError
    from pyhanko.sign.validation.status import SignatureCoverageLevel

LOCAL_SEAL_FILE = BASE_DIR / ".data" / "document_seal.p12"
SEAL_FIELD = "ServiceSeal"
SEAL_COMMON_NAME = "CLM workflow service document seal"
LOCAL_SEAL_YEARS = 10


@dataclass(frozen=True)
class SealIdentity:
    signer: signers.SimpleSigner
    certificate: asn1_x509.Certificate

    @property
    def fingerprint(self) -> str:
        return self.certificate.sha256.hex()


def _local_p12() -> bytes:
    """The local seal's PKCS#12 bytes (no password), created first if there is none."""
    if not LOCAL_SEAL_FILE.exists():
        LOCAL_SEAL_FILE.parent.mkdir(exist_ok=True)
        # Written aside, then linked into place: concurrent first runs agree on one key.
        draft = LOCAL_SEAL_FILE.with_name(f".{LOCAL_SEAL_FILE.name}.{secrets.token_hex(8)}")
        draft.write_bytes(new_self_signed_p12(SEAL_COMMON_NAME))
        draft.chmod(0o600)
        try:
            os.link(draft, LOCAL_SEAL_FILE)
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    return LOCAL_SEAL_FILE.read_bytes()


def new_self_signed_p12(common_name: str, password: bytes | None = None) -> bytes:
    """A fresh RSA key and a self-signed certificate for it, as PKCS#12 bytes."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "CLM workflow service"),
        ]
    )
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=365 * LOCAL_SEAL_YEARS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    encryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    return pkcs12.serialize_key_and_certificates(
        common_name.encode(), key, certificate, None, encryption
    )


def identity_from_p12(data: bytes, password: bytes | None = None) -> SealIdentity:
    key, certificate, extra = pkcs12.load_key_and_certificates(data, password)
    if key is None or certificate is None:
        raise ValueError("the PKCS#12 file must hold a private key and its certificate")
    der_key = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    chain = [
        asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))
        for cert in [certificate, *(extra or [])]
    ]
    signer = signers.SimpleSigner(
        signing_cert=chain[0],
        signing_key=asn1_keys.PrivateKeyInfo.load(der_key),
        cert_registry=SimpleCertificateStore.from_certs(chain),
    )
    return SealIdentity(signer=signer, certificate=chain[0])


@functools.cache
def seal_identity() -> SealIdentity:
    """The configured seal (loaded once per process)."""
    if settings.DOCUMENT_SEAL_P12:
        password = settings.DOCUMENT_SEAL_P12_PASSWORD.encode() or None
        return identity_from_p12(Path(settings.DOCUMENT_SEAL_P12).read_bytes(), password)
    return identity_from_p12(_local_p12())


def seal_pdf(pdf: bytes, *, reason: str, identity: SealIdentity | None = None) -> bytes:
    """``pdf`` with a PAdES signature by the seal appended (an incremental update)."""
    identity = identity or seal_identity()
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
    metadata = signers.PdfSignatureMetadata(
        field_name=SEAL_FIELD,
        subfilter=SigSeedSubFilter.PADES,
        reason=reason,
        name=SEAL_COMMON_NAME,
    )
    return signers.sign_pdf(writer, metadata, signer=identity.signer).getvalue()


@dataclass(frozen=True)
class Verification:
    valid: bool
    ours: bool
    sha256: str
    sealed_at: datetime.datetime | None
    reason: str


def verify_pdf(data: bytes, *, identity: SealIdentity | None = None) -> Verification:
    """Whether ``data`` carries our seal over every byte, and if not, why not."""
    identity = identity or seal_identity()
    digest = hashlib.sha256(data).hexdigest()

    def refused(reason: str, *, ours=False, sealed_at=None) -> Verification:
        return Verification(False, ours, digest, sealed_at, reason)

    try:
        signatures = PdfFileReader(io.BytesIO(data), strict=False).embedded_signatures
    except Exception:
        return refused("The file is not a readable PDF.")
    ours = [
        signature
        for signature in signatures
        if _signer_fingerprint(signature) == identity.fingerprint
    ]
    if not signatures:
        return refused("The PDF carries no seal.")
    if not ours:
        return refused("The PDF is sealed by another key, not by this service.")
    context = ValidationContext(trust_roots=[identity.certificate], allow_fetching=False)
    try:
        status = validate_pdf_signature(ours[-1], context)
    except (SignatureValidationError, ValueError, KeyError, TypeError):
        return refused("The seal is damaged: its signature cannot be read.", ours=True)
    sealed_at = status.signer_reported_dt
    if not (status.intact and status.valid):
        return refused(
            "The bytes changed after sealing: the seal's digest does not match.",
            ours=True,
            sealed_at=sealed_at,
        )
    if status.coverage != SignatureCoverageLevel.ENTIRE_FILE:
        return refused(
            "Content was added after sealing (an incremental update follows the seal).",
            ours=True,
            sealed_at=sealed_at,
        )
    return Verification(True, True, digest, sealed_at, "Sealed by this service and unmodified.")


def _signer_fingerprint(signature) -> str | None:
    try:
        return signature.signer_cert.sha256.hex()
    except Exception:
        return None
