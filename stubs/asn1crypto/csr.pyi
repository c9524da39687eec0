from .algos import SignedDigestAlgorithm as SignedDigestAlgorithm
from .core import Any as Any
from .core import BMPString as BMPString
from .core import BitString as BitString
from .core import Integer as Integer
from .core import ObjectIdentifier as ObjectIdentifier
from .core import OctetBitString as OctetBitString
from .core import Sequence as Sequence
from .core import SetOf as SetOf
from .core import UTF8String as UTF8String
from .keys import PublicKeyInfo as PublicKeyInfo
from .x509 import DirectoryString as DirectoryString
from .x509 import Extensions as Extensions
from .x509 import Name as Name

class Version(Integer): ...

class CSRAttributeType(ObjectIdentifier): ...

class SetOfDirectoryString(SetOf):
    _child_spec = DirectoryString

class Attribute(Sequence): ...

class SetOfAttributes(SetOf):
    _child_spec = Attribute

class SetOfExtensions(SetOf):
    _child_spec = Extensions

class MicrosoftEnrollmentCSProvider(Sequence): ...

class SetOfMicrosoftEnrollmentCSProvider(SetOf):
    _child_spec = MicrosoftEnrollmentCSProvider

class MicrosoftRequestClientInfo(Sequence): ...

class SetOfMicrosoftRequestClientInfo(SetOf):
    _child_spec = MicrosoftRequestClientInfo

class CRIAttribute(Sequence): ...

class CRIAttributes(SetOf):
    _child_spec = CRIAttribute

class CertificationRequestInfo(Sequence): ...

class CertificationRequest(Sequence): ...
