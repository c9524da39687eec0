from typing import Any as _Any
from .algos import DigestAlgorithm as DigestAlgorithm
from .algos import SignedDigestAlgorithm as SignedDigestAlgorithm
from .core import Boolean as Boolean
from .core import Choice as Choice
from .core import Enumerated as Enumerated
from .core import GeneralizedTime as GeneralizedTime
from .core import IA5String as IA5String
from .core import Integer as Integer
from .core import Null as Null
from .core import ObjectIdentifier as ObjectIdentifier
from .core import OctetBitString as OctetBitString
from .core import OctetString as OctetString
from .core import ParsableOctetString as ParsableOctetString
from .core import Sequence as Sequence
from .core import SequenceOf as SequenceOf
from .crl import AuthorityInfoAccessSyntax as AuthorityInfoAccessSyntax
from .crl import CRLReason as CRLReason
from .keys import PublicKeyAlgorithm as PublicKeyAlgorithm
from .x509 import Certificate as Certificate
from .x509 import GeneralName as GeneralName
from .x509 import GeneralNames as GeneralNames
from .x509 import Name as Name

class Version(Integer): ...

class CertId(Sequence): ...

class ServiceLocator(Sequence): ...

class RequestExtensionId(ObjectIdentifier): ...

class RequestExtension(Sequence): ...

class RequestExtensions(SequenceOf):
    _child_spec = RequestExtension

class Request(Sequence):
    _processed_extensions: bool
    _critical_extensions: set[str] | None
    _service_locator_value: ServiceLocator | None
    def _set_extensions(self) -> None: ...
    @property
    def critical_extensions(self) -> set[str]: ...
    @property
    def service_locator_value(self) -> ServiceLocator | None: ...

class Requests(SequenceOf):
    _child_spec = Request

class ResponseType(ObjectIdentifier): ...

class AcceptableResponses(SequenceOf):
    _child_spec = ResponseType

class PreferredSignatureAlgorithm(Sequence): ...

class PreferredSignatureAlgorithms(SequenceOf):
    _child_spec = PreferredSignatureAlgorithm

class TBSRequestExtensionId(ObjectIdentifier): ...

class TBSRequestExtension(Sequence): ...

class TBSRequestExtensions(SequenceOf):
    _child_spec = TBSRequestExtension

class TBSRequest(Sequence): ...

class Certificates(SequenceOf):
    _child_spec = Certificate

class Signature(Sequence): ...

class OCSPRequest(Sequence):
    _processed_extensions: bool
    _critical_extensions: set[str] | None
    _nonce_value: OctetString | None
    _acceptable_responses_value: AcceptableResponses | None
    _preferred_signature_algorithms_value: PreferredSignatureAlgorithms | None
    def _set_extensions(self) -> None: ...
    @property
    def critical_extensions(self) -> set[str]: ...
    @property
    def nonce_value(self) -> OctetString | None: ...
    @property
    def acceptable_responses_value(self) -> AcceptableResponses | None: ...
    @property
    def preferred_signature_algorithms_value(self) -> PreferredSignatureAlgorithms | None: ...

class OCSPResponseStatus(Enumerated): ...

class ResponderId(Choice): ...

class StatusGood(Null):
    contents: bytes
    def __init__(
        self, value: str | None = None, default: str | None = None, contents: bytes | None = None, **kwargs: _Any
    ) -> None: ...
    def set(self, value: str | Null | None) -> None: ...
    @property
    def native(self) -> str: ...

class StatusUnknown(Null):
    contents: bytes
    def __init__(
        self, value: str | None = None, default: str | None = None, contents: bytes | None = None, **kwargs: _Any
    ) -> None: ...
    def set(self, value: str | Null | None) -> None: ...
    @property
    def native(self) -> str: ...

class RevokedInfo(Sequence): ...

class CertStatus(Choice): ...

class CrlId(Sequence): ...

class SingleResponseExtensionId(ObjectIdentifier): ...

class SingleResponseExtension(Sequence): ...

class SingleResponseExtensions(SequenceOf):
    _child_spec = SingleResponseExtension

class SingleResponse(Sequence):
    _processed_extensions: bool
    _critical_extensions: set[str] | None
    _crl_value: CrlId | None
    _archive_cutoff_value: GeneralizedTime | None
    _crl_reason_value: CRLReason | None
    _invalidity_date_value: GeneralizedTime | None
    _certificate_issuer_value: GeneralNames | None
    def _set_extensions(self) -> None: ...
    @property
    def critical_extensions(self) -> set[str]: ...
    @property
    def crl_value(self) -> CrlId | None: ...
    @property
    def archive_cutoff_value(self) -> GeneralizedTime | None: ...
    @property
    def crl_reason_value(self) -> CRLReason | None: ...
    @property
    def invalidity_date_value(self) -> GeneralizedTime | None: ...
    @property
    def certificate_issuer_value(self) -> GeneralNames | None: ...

class Responses(SequenceOf):
    _child_spec = SingleResponse

class ResponseDataExtensionId(ObjectIdentifier): ...

class ResponseDataExtension(Sequence): ...

class ResponseDataExtensions(SequenceOf):
    _child_spec = ResponseDataExtension

class ResponseData(Sequence): ...

class BasicOCSPResponse(Sequence): ...

class ResponseBytes(Sequence): ...

class OCSPResponse(Sequence):
    _processed_extensions: bool
    _critical_extensions: set[str] | None
    _nonce_value: OctetString | None
    _extended_revoke_value: Null | None
    def _set_extensions(self) -> None: ...
    @property
    def critical_extensions(self) -> set[str]: ...
    @property
    def nonce_value(self) -> OctetString | None: ...
    @property
    def extended_revoke_value(self) -> Null | None: ...
    @property
    def basic_ocsp_response(self) -> BasicOCSPResponse | None: ...
    @property
    def response_data(self) -> ResponseData | None: ...
