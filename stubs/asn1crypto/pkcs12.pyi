from .algos import DigestInfo as DigestInfo
from .cms import ContentInfo as ContentInfo
from .cms import SignedData as SignedData
from .core import Any as Any
from .core import Asn1Value as Asn1Value
from .core import BMPString as BMPString
from .core import Integer as Integer
from .core import ObjectIdentifier as ObjectIdentifier
from .core import OctetString as OctetString
from .core import ParsableOctetString as ParsableOctetString
from .core import Sequence as Sequence
from .core import SequenceOf as SequenceOf
from .core import SetOf as SetOf
from .keys import EncryptedPrivateKeyInfo as EncryptedPrivateKeyInfo
from .keys import PrivateKeyInfo as PrivateKeyInfo
from .x509 import Certificate as Certificate
from .x509 import KeyPurposeId as KeyPurposeId

class MacData(Sequence): ...

class Version(Integer): ...

class AttributeType(ObjectIdentifier): ...

class SetOfAny(SetOf):
    _child_spec = Any

class SetOfBMPString(SetOf):
    _child_spec = BMPString

class SetOfOctetString(SetOf):
    _child_spec = OctetString

class SetOfKeyPurposeId(SetOf):
    _child_spec = KeyPurposeId

class Attribute(Sequence):
    def _values_spec(self) -> type[Asn1Value]: ...

class Attributes(SetOf):
    _child_spec = Attribute

class Pfx(Sequence):
    _authenticated_safe: AuthenticatedSafe | None
    @property
    def authenticated_safe(self) -> AuthenticatedSafe: ...

class AuthenticatedSafe(SequenceOf):
    _child_spec = ContentInfo

class BagId(ObjectIdentifier): ...

class CertId(ObjectIdentifier): ...

class CertBag(Sequence): ...

class CrlBag(Sequence): ...

class SecretBag(Sequence): ...

class SafeContents(SequenceOf): ...

class SafeBag(Sequence): ...
