from .algos import SignedDigestAlgorithm as SignedDigestAlgorithm
from .core import Boolean as Boolean
from .core import Enumerated as Enumerated
from .core import GeneralizedTime as GeneralizedTime
from .core import Integer as Integer
from .core import ObjectIdentifier as ObjectIdentifier
from .core import OctetBitString as OctetBitString
from .core import ParsableOctetString as ParsableOctetString
from .core import Sequence as Sequence
from .core import SequenceOf as SequenceOf
from .x509 import AuthorityInfoAccessSyntax as AuthorityInfoAccessSyntax
from .x509 import AuthorityKeyIdentifier as AuthorityKeyIdentifier
from .x509 import CRLDistributionPoints as CRLDistributionPoints
from .x509 import DistributionPointName as DistributionPointName
from .x509 import GeneralNames as GeneralNames
from .x509 import Name as Name
from .x509 import ReasonFlags as ReasonFlags
from .x509 import Time as Time
from .x509 import DistributionPoint as DistributionPoint


class Version(Integer): ...

class IssuingDistributionPoint(Sequence): ...

class TBSCertListExtensionId(ObjectIdentifier): ...

class TBSCertListExtension(Sequence): ...

class TBSCertListExtensions(SequenceOf):
    _child_spec = TBSCertListExtension

class CRLReason(Enumerated):
    @property
    def human_friendly(self) -> str: ...

class CRLEntryExtensionId(ObjectIdentifier): ...

class CRLEntryExtension(Sequence): ...

class CRLEntryExtensions(SequenceOf):
    _child_spec = CRLEntryExtension

class RevokedCertificate(Sequence):
    _processed_extensions: bool
    _critical_extensions: set[str] | None
    _crl_reason_value: CRLReason | None
    _invalidity_date_value: GeneralizedTime | None
    _certificate_issuer_value: GeneralNames | None
    _issuer_name: Name | None | bool
    def _set_extensions(self) -> None: ...
    @property
    def critical_extensions(self) -> set[str]: ...
    @property
    def crl_reason_value(self) -> CRLReason | None: ...
    @property
    def invalidity_date_value(self) -> GeneralizedTime | None: ...
    @property
    def certificate_issuer_value(self) -> GeneralNames | None: ...
    @property
    def issuer_name(self) -> Name | None: ...

class RevokedCertificates(SequenceOf):
    _child_spec = RevokedCertificate

class TbsCertList(Sequence): ...

class CertificateList(Sequence):
    _processed_extensions: bool
    _critical_extensions: set[str] | None
    _issuer_alt_name_value: GeneralNames | None
    _crl_number_value: Integer | None
    _delta_crl_indicator_value: Integer | None
    _issuing_distribution_point_value: IssuingDistributionPoint | None
    _authority_key_identifier_value: AuthorityKeyIdentifier | None
    _freshest_crl_value: CRLDistributionPoints | None
    _authority_information_access_value: AuthorityInfoAccessSyntax | None
    _issuer_cert_urls: list[str] | None
    _delta_crl_distribution_points: list[DistributionPoint] | None
    _sha1: bytes | None
    _sha256: bytes | None
    def _set_extensions(self) -> None: ...
    @property
    def critical_extensions(self) -> set[str]: ...
    @property
    def issuer_alt_name_value(self) -> GeneralNames | None: ...
    @property
    def crl_number_value(self) -> Integer | None: ...
    @property
    def delta_crl_indicator_value(self) -> Integer | None: ...
    @property
    def issuing_distribution_point_value(self) -> IssuingDistributionPoint | None: ...
    @property
    def authority_key_identifier_value(self) -> AuthorityKeyIdentifier | None: ...
    @property
    def freshest_crl_value(self) -> CRLDistributionPoints | None: ...
    @property
    def authority_information_access_value(self) -> AuthorityInfoAccessSyntax | None: ...
    @property
    def issuer(self) -> Name: ...
    @property
    def authority_key_identifier(self) -> bytes | None: ...
    @property
    def issuer_cert_urls(self) -> list[str]: ...
    @property
    def delta_crl_distribution_points(self) -> list[DistributionPoint]: ...
    @property
    def signature(self) -> bytes: ...
    @property
    def sha1(self) -> bytes: ...
    @property
    def sha256(self) -> bytes: ...
