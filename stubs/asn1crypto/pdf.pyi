from .cms import CMSAttribute as CMSAttribute
from .cms import CMSAttributeType as CMSAttributeType
from .core import Boolean as Boolean
from .core import Integer as Integer
from .core import Null as Null
from .core import ObjectIdentifier as ObjectIdentifier
from .core import OctetString as OctetString
from .core import Sequence as Sequence
from .core import SequenceOf as SequenceOf
from .core import SetOf as SetOf
from .crl import CertificateList as CertificateList
from .ocsp import OCSPResponse as OCSPResponse
from .x509 import Extension as Extension
from .x509 import ExtensionId as ExtensionId
from .x509 import GeneralName as GeneralName
from .x509 import KeyPurposeId as KeyPurposeId

class AdobeArchiveRevInfo(Sequence): ...

class AdobeTimestamp(Sequence): ...

class OtherRevInfo(Sequence): ...

class SequenceOfCertificateList(SequenceOf):
    _child_spec = CertificateList

class SequenceOfOCSPResponse(SequenceOf):
    _child_spec = OCSPResponse

class SequenceOfOtherRevInfo(SequenceOf):
    _child_spec = OtherRevInfo

class RevocationInfoArchival(Sequence): ...

class SetOfRevocationInfoArchival(SetOf):
    _child_spec = RevocationInfoArchival
