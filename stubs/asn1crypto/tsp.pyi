from .algos import DigestAlgorithm as DigestAlgorithm
from .cms import CMSAttribute as CMSAttribute
from .cms import CMSAttributeType as CMSAttributeType
from .cms import ContentInfo as ContentInfo
from .cms import ContentType as ContentType
from .cms import EncapsulatedContentInfo as EncapsulatedContentInfo
from .core import Any as Any
from .core import BitString as BitString
from .core import Boolean as Boolean
from .core import Choice as Choice
from .core import GeneralizedTime as GeneralizedTime
from .core import IA5String as IA5String
from .core import Integer as Integer
from .core import ObjectIdentifier as ObjectIdentifier
from .core import OctetString as OctetString
from .core import Sequence as Sequence
from .core import SequenceOf as SequenceOf
from .core import SetOf as SetOf
from .core import UTF8String as UTF8String
from .crl import CertificateList as CertificateList
from .x509 import Attributes as Attributes
from .x509 import CertificatePolicies as CertificatePolicies
from .x509 import GeneralName as GeneralName
from .x509 import GeneralNames as GeneralNames

class Version(Integer): ...

class MessageImprint(Sequence): ...

class Accuracy(Sequence): ...

class Extension(Sequence): ...

class Extensions(SequenceOf):
    _child_spec = Extension

class TSTInfo(Sequence): ...

class TimeStampReq(Sequence): ...

class PKIStatus(Integer): ...

class PKIFreeText(SequenceOf):
    _child_spec = UTF8String

class PKIFailureInfo(BitString): ...

class PKIStatusInfo(Sequence): ...

class TimeStampResp(Sequence): ...

class MetaData(Sequence): ...

class TimeStampAndCRL(Sequence): ...

class TimeStampTokenEvidence(SequenceOf):
    _child_spec = TimeStampAndCRL

class DigestAlgorithms(SequenceOf):
    _child_spec = DigestAlgorithm

class EncryptionInfo(Sequence): ...

class PartialHashtree(SequenceOf):
    _child_spec = OctetString

class PartialHashtrees(SequenceOf):
    _child_spec = PartialHashtree

class ArchiveTimeStamp(Sequence): ...

class ArchiveTimeStampSequence(SequenceOf):
    _child_spec = ArchiveTimeStamp

class EvidenceRecord(Sequence): ...

class OtherEvidence(Sequence): ...

class Evidence(Choice): ...

class TimeStampedData(Sequence): ...

class IssuerSerial(Sequence): ...

class ESSCertID(Sequence): ...

class ESSCertIDs(SequenceOf):
    _child_spec = ESSCertID

class SigningCertificate(Sequence): ...

class SetOfSigningCertificates(SetOf):
    _child_spec = SigningCertificate

class ESSCertIDv2(Sequence): ...

class ESSCertIDv2s(SequenceOf):
    _child_spec = ESSCertIDv2

class SigningCertificateV2(Sequence): ...

class SetOfSigningCertificatesV2(SetOf):
    _child_spec = SigningCertificateV2
