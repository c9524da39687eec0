from .algos import DigestAlgorithm as DigestAlgorithm
from .algos import EncryptionAlgorithm as EncryptionAlgorithm
from .algos import EncryptionAlgorithmId as EncryptionAlgorithmId
from .algos import HmacAlgorithm as HmacAlgorithm
from .algos import KdfAlgorithm as KdfAlgorithm
from .algos import RSAESOAEPParams as RSAESOAEPParams
from .algos import SignedDigestAlgorithm as SignedDigestAlgorithm
from .algos import _ForceNullParameters as _ForceNullParameters
from .core import Any as Any
from .core import Asn1Value as Asn1Value
from .core import BitString as BitString
from .core import Choice as Choice
from .core import Enumerated as Enumerated
from .core import GeneralizedTime as GeneralizedTime
from .core import Integer as Integer
from .core import ObjectIdentifier as ObjectIdentifier
from .core import OctetBitString as OctetBitString
from .core import OctetString as OctetString
from .core import ParsableOctetString as ParsableOctetString
from .core import Sequence as Sequence
from .core import SequenceOf as SequenceOf
from .core import SetOf as SetOf
from .core import UTCTime as UTCTime
from .core import UTF8String as UTF8String
from .crl import CertificateList as CertificateList
from .keys import PublicKeyInfo as PublicKeyInfo
from .ocsp import OCSPResponse as OCSPResponse
from .x509 import Attributes as Attributes
from .x509 import Certificate as Certificate
from .x509 import Extensions as Extensions
from .x509 import GeneralName as GeneralName
from .x509 import GeneralNames as GeneralNames
from .x509 import Name as Name

class ExtendedCertificateInfo(Sequence): ...

class ExtendedCertificate(Sequence): ...

class CMSVersion(Integer): ...

class CMSAttributeType(ObjectIdentifier): ...

class Time(Choice): ...

class ContentType(ObjectIdentifier): ...

class CMSAlgorithmProtection(Sequence): ...

class SetOfContentType(SetOf):
    _child_spec = ContentType

class SetOfOctetString(SetOf):
    _child_spec = OctetString

class SetOfTime(SetOf):
    _child_spec = Time

class SetOfAny(SetOf):
    _child_spec = Any

class SetOfCMSAlgorithmProtection(SetOf):
    _child_spec = CMSAlgorithmProtection

class CMSAttribute(Sequence):
    def _values_spec(self) -> type[Asn1Value]: ...

class CMSAttributes(SetOf):
    _child_spec = CMSAttribute

class IssuerSerial(Sequence): ...

class AttCertVersion(Integer): ...

class AttCertSubject(Choice): ...

class AttCertValidityPeriod(Sequence): ...

class AttributeCertificateInfoV1(Sequence): ...

class AttributeCertificateV1(Sequence): ...

class DigestedObjectType(Enumerated): ...

class ObjectDigestInfo(Sequence): ...

class Holder(Sequence): ...

class V2Form(Sequence): ...

class AttCertIssuer(Choice): ...

class IetfAttrValue(Choice): ...

class IetfAttrValues(SequenceOf):
    _child_spec = IetfAttrValue

class IetfAttrSyntax(Sequence): ...

class SetOfIetfAttrSyntax(SetOf):
    _child_spec = IetfAttrSyntax

class SvceAuthInfo(Sequence): ...

class SetOfSvceAuthInfo(SetOf):
    _child_spec = SvceAuthInfo

class RoleSyntax(Sequence): ...

class SetOfRoleSyntax(SetOf):
    _child_spec = RoleSyntax

class ClassList(BitString): ...

class SecurityCategory(Sequence): ...

class SetOfSecurityCategory(SetOf):
    _child_spec = SecurityCategory

class Clearance(Sequence): ...

class SetOfClearance(SetOf):
    _child_spec = Clearance

class BigTime(Sequence): ...

class LeapData(Sequence): ...

class SetOfLeapData(SetOf):
    _child_spec = LeapData

class TimingMetrics(Sequence): ...

class SetOfTimingMetrics(SetOf):
    _child_spec = TimingMetrics

class TimingPolicy(Sequence): ...

class SetOfTimingPolicy(SetOf):
    _child_spec = TimingPolicy

class AttCertAttributeType(ObjectIdentifier): ...

class AttCertAttribute(Sequence):
    def _values_spec(self) -> type[Asn1Value]: ...

class AttCertAttributes(SequenceOf):
    _child_spec = AttCertAttribute

class AttributeCertificateInfoV2(Sequence): ...

class AttributeCertificateV2(Sequence): ...

class OtherCertificateFormat(Sequence): ...

class CertificateChoices(Choice):
    def validate(self, class_: int, tag: int, contents: bytes) -> None: ...

class CertificateSet(SetOf):
    _child_spec = CertificateChoices

class ContentInfo(Sequence): ...

class SetOfContentInfo(SetOf):
    _child_spec = ContentInfo

class EncapsulatedContentInfo(Sequence): ...

class IssuerAndSerialNumber(Sequence): ...

class SignerIdentifier(Choice): ...

class DigestAlgorithms(SetOf):
    _child_spec = DigestAlgorithm

class CertificateRevocationLists(SetOf):
    _child_spec = CertificateList

class SCVPReqRes(Sequence): ...

class OtherRevInfoFormatId(ObjectIdentifier): ...

class OtherRevocationInfoFormat(Sequence): ...

class RevocationInfoChoice(Choice): ...

class RevocationInfoChoices(SetOf):
    _child_spec = RevocationInfoChoice

class SignerInfo(Sequence): ...

class SignerInfos(SetOf):
    _child_spec = SignerInfo

class SignedData(Sequence):
    def _encap_content_info_spec(self) -> type[Asn1Value]: ...

class OriginatorInfo(Sequence): ...

class RecipientIdentifier(Choice): ...

class KeyEncryptionAlgorithmId(ObjectIdentifier): ...

class KeyEncryptionAlgorithm(_ForceNullParameters, Sequence): ...

class KeyTransRecipientInfo(Sequence): ...

class OriginatorIdentifierOrKey(Choice): ...

class OtherKeyAttribute(Sequence): ...

class KeyAgreementRecipientIdentifier(Choice): ...

class RecipientEncryptedKey(Sequence): ...

class RecipientEncryptedKeys(SequenceOf):
    _child_spec = RecipientEncryptedKey

class KeyAgreeRecipientInfo(Sequence): ...

class KEKIdentifier(Sequence): ...

class KEKRecipientInfo(Sequence): ...

class PasswordRecipientInfo(Sequence): ...

class OtherRecipientInfo(Sequence): ...

class RecipientInfo(Choice): ...

class RecipientInfos(SetOf):
    _child_spec = RecipientInfo

class EncryptedContentInfo(Sequence): ...

class EnvelopedData(Sequence): ...

class SignedAndEnvelopedData(Sequence): ...

class DigestedData(Sequence):
    def _encap_content_info_spec(self) -> type[Asn1Value]: ...

class EncryptedData(Sequence): ...

class AuthenticatedData(Sequence): ...

class AuthEnvelopedData(Sequence): ...

class CompressionAlgorithmId(ObjectIdentifier): ...

class CompressionAlgorithm(Sequence): ...

class CompressedData(Sequence):
    _decompressed: bytes | None
    @property
    def decompressed(self) -> bytes: ...

class RecipientKeyIdentifier(Sequence): ...

class SMIMEEncryptionKeyPreference(Choice): ...

class SMIMEEncryptionKeyPreferences(SetOf):
    _child_spec = SMIMEEncryptionKeyPreference

class SMIMECapabilityIdentifier(Sequence): ...

class SMIMECapabilites(SequenceOf):
    _child_spec = SMIMECapabilityIdentifier

class SetOfSMIMECapabilites(SetOf):
    _child_spec = SMIMECapabilites
