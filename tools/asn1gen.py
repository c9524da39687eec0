#!/usr/bin/env python3
"""Generate the asn1crypto schemas of ``rspfed/asn1/``: rsp, saip, federation, ledger, transfer.

Usage::

    python tools/asn1gen.py            # rewrite the files
    python tools/asn1gen.py --check    # exit 1 if a committed file is out of date

The ASN.1 modules in ``rspfed/asn1/modules/`` are parsed with
``asn1tools.parse_files`` (a development dependency only); this script then
turns the parsed dictionary into Python classes based on
:mod:`rspfed.asn1._base`.  What it does beyond a plain transliteration:

* **Tagging** (X.680 §31.2.7, §25.3): ``AUTOMATIC TAGS`` numbers the components
  of a SEQUENCE/SET/CHOICE ``[0]``, ``[1]``, ... only when *no* component as
  written carries a tag; root components are numbered first, extension
  additions after them; ``COMPONENTS OF`` is expanded (root components of the
  referenced type) before numbering.  A tag is implicit unless written
  ``EXPLICIT`` or the tagged type is an untagged CHOICE (then explicit).
  Tags on type assignments (``[APPLICATION n]``, ``[PRIVATE n]``,
  ``[UNIVERSAL n]``, context) go on the class (``class_``/``tag``, or
  ``explicit`` for a CHOICE).
* **Anonymous inner types** become classes named ``Outer_field`` (nested:
  ``Outer_field_sub``); the element type of an inline ``SEQUENCE OF`` is
  ``Outer_field_item`` (``Type_item`` for a type assignment).  Simple
  unconstrained built-ins use the base classes directly.
* **Constraints**: SIZE becomes ``_size_constraint`` (tuple of inclusive
  ``(low, high)`` ranges, ``high`` None for MAX), value ranges become
  ``_value_range``; referenced value constants (``maxUInt8``) are resolved.
* **DEFAULT** values become asn1crypto ``default`` params; **named numbers /
  named bits / enumerations** become ``_map``.
* **Value assignments** become module constants (OIDs as dotted strings).
* Every module is ``EXTENSIBILITY IMPLIED``: ``_extensible = True`` on every
  SEQUENCE, CHOICE and ENUMERATED class.
"""

from __future__ import annotations

import argparse
import keyword
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
MODULES = REPO / "rspfed" / "asn1" / "modules"
OUT = REPO / "rspfed" / "asn1"

__all__ = ["generate", "main"]

CLASS_NUM = {"UNIVERSAL": 0, "APPLICATION": 1, "CONTEXT": 2, "PRIVATE": 3}
CLASS_NAME = {0: "universal", 1: "application", 2: "context", 3: "private"}

BUILTIN = {
    "BOOLEAN": "b.Boolean",
    "INTEGER": "b.Integer",
    "ENUMERATED": "b.Enumerated",
    "BIT STRING": "b.BitString",
    "OCTET STRING": "b.OctetString",
    "NULL": "b.Null",
    "OBJECT IDENTIFIER": "b.ObjectIdentifier",
    "UTF8String": "b.UTF8String",
    "IA5String": "b.IA5String",
    "PrintableString": "b.PrintableString",
    "NumericString": "b.NumericString",
    "VisibleString": "b.VisibleString",
    "GeneralizedTime": "b.GeneralizedTime",
    "UTCTime": "b.UTCTime",
    "SEQUENCE": "b.Sequence",
    "SEQUENCE OF": "b.SequenceOf",
    "SET OF": "b.SetOf",
    "CHOICE": "b.Choice",
}
UNIVERSAL_TAG = {
    "BOOLEAN": 1,
    "INTEGER": 2,
    "BIT STRING": 3,
    "OCTET STRING": 4,
    "NULL": 5,
    "OBJECT IDENTIFIER": 6,
    "ENUMERATED": 10,
    "UTF8String": 12,
    "SEQUENCE": 16,
    "SEQUENCE OF": 16,
    "SET": 17,
    "SET OF": 17,
    "NumericString": 18,
    "PrintableString": 19,
    "IA5String": 22,
    "UTCTime": 23,
    "GeneralizedTime": 24,
    "VisibleString": 26,
}

# Types imported from PKIX: the asn1crypto classes that implement them, and
# whether the type is an untagged CHOICE (matters for tagging).
IMPORTED: dict[str, tuple[str, bool, tuple[tuple[int, int], ...]]] = {
    "Certificate": ("x509.Certificate", False, ((0, 16),)),
    "CertificateList": ("crl.CertificateList", False, ((0, 16),)),
    "Time": ("x509.Time", True, ((0, 23), (0, 24))),
    "SubjectKeyIdentifier": ("SubjectKeyIdentifier", False, ((0, 4),)),
}

EXTERNAL = ("b.", "x509.", "crl.")
"""Prefixes of class expressions defined outside the generated module."""


def py_name(name: str) -> str:
    """An ASN.1 identifier as a Python identifier (``-`` -> ``_``)."""
    out = name.replace("-", "_")
    if keyword.iskeyword(out):
        out += "_"
    return out


class Module:
    """Generation state for one ASN.1 module."""

    def __init__(self, name: str, parsed: dict[str, Any], source: str) -> None:
        self.name = name
        self.parsed = parsed
        self.source = source
        self.types: dict[str, Any] = parsed["types"]
        self.values: dict[str, Any] = parsed["values"]
        self.tag_default: str = parsed["tags"]
        self.classes: dict[str, list[str]] = {}  # python class name -> source lines
        self.deps: dict[str, set[str]] = {}
        self.order: list[str] = []
        self.public: list[str] = []

    # -- values ----------------------------------------------------------

    def int_value(self, value: Any) -> int | None:
        if value == "MAX" or value == "MIN":
            return None
        if isinstance(value, int):
            return value
        if isinstance(value, str) and value in self.values:
            resolved = self.values[value]["value"]
            assert isinstance(resolved, int), value
            return resolved
        raise ValueError(f"cannot resolve integer value {value!r}")

    def oid_value(self, name: str) -> list[int]:
        arcs: list[int] = []
        for arc in self.values[name]["value"]:
            if isinstance(arc, tuple):
                arcs.append(int(arc[1]))
            elif isinstance(arc, int):
                arcs.append(arc)
            elif isinstance(arc, str) and arc.isdigit():
                arcs.append(int(arc))
            elif isinstance(arc, str) and arc in self.values:
                arcs.extend(self.oid_value(arc))
            else:
                raise ValueError(f"cannot resolve OID arc {arc!r} in {name}")
        return arcs

    # -- type facts ------------------------------------------------------

    def resolve(self, node: dict[str, Any]) -> dict[str, Any]:
        """Follow references to the defining builtin node (tags ignored)."""
        seen = 0
        while node["type"] not in BUILTIN and node["type"] in self.types:
            node = self.types[node["type"]]
            seen += 1
            assert seen < 50
        return node

    def outer_ids(self, node: dict[str, Any]) -> tuple[tuple[int, int], ...]:
        """The possible outer (class, tag) pairs of a node as written."""
        if "tag" in node:
            tag = node["tag"]
            return ((CLASS_NUM[tag.get("class", "CONTEXT")], tag["number"]),)
        typ = node["type"]
        if typ in IMPORTED:
            return IMPORTED[typ][2]
        if typ == "CHOICE":
            ids: list[tuple[int, int]] = []
            for member in self.choice_members(node):
                ids.extend(self.outer_ids(member))
            return tuple(ids)
        if typ in BUILTIN:
            return ((0, UNIVERSAL_TAG[typ]),)
        return self.outer_ids(self.types[typ])

    def is_untagged_choice(self, node: dict[str, Any]) -> bool:
        while True:
            if "tag" in node:
                return False
            typ = node["type"]
            if typ in IMPORTED:
                return IMPORTED[typ][1]
            if typ == "CHOICE":
                return True
            if typ in BUILTIN:
                return False
            node = self.types[typ]

    def split_members(
        self, node: dict[str, Any]
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], bool]:
        """(root components in order, extension additions, has an extension marker)."""
        members = node.get("members") or []
        root: list[dict[str, Any]] = []
        additions: list[dict[str, Any]] = []
        markers = 0
        for member in members:
            if member is None:
                markers += 1
                continue
            if "components-of" in member:
                ref = self.resolve({"type": member["components-of"]})
                ref_root, _, _ = self.split_members(ref)
                (additions if markers == 1 else root).extend(ref_root)
                continue
            (additions if markers == 1 else root).append(member)
        return root, additions, markers > 0

    def choice_members(self, node: dict[str, Any]) -> list[dict[str, Any]]:
        return self.tagged_members(node)

    def tagged_members(self, node: dict[str, Any]) -> list[dict[str, Any]]:
        """Members in encoding order with automatic tags applied (X.680 §25.3)."""
        members = [m for m in (node.get("members") or []) if m is not None]
        root, additions, _ = self.split_members(node)
        written = [m for m in members if "components-of" not in m]
        automatic = self.tag_default == "AUTOMATIC" and not any("tag" in m for m in written)
        # encoding order: as written, with COMPONENTS OF expanded in place
        ordered: list[dict[str, Any]] = []
        for member in node.get("members") or []:
            if member is None:
                continue
            if "components-of" in member:
                ref_root, _, _ = self.split_members(self.resolve({"type": member["components-of"]}))
                ordered.extend(ref_root)
            else:
                ordered.append(member)
        if not automatic:
            return ordered
        numbers = {id(m): i for i, m in enumerate(root + additions)}
        out = []
        for member in ordered:
            tagged = dict(member)
            tagged["tag"] = {"number": numbers[id(member)]}
            out.append(tagged)
        return out

    # -- class emission --------------------------------------------------

    def constraint_lines(self, node: dict[str, Any]) -> list[str]:
        lines = []
        if "size" in node:
            ranges = []
            for item in node["size"]:
                if isinstance(item, tuple):
                    ranges.append((self.int_value(item[0]), self.int_value(item[1])))
                else:
                    value = self.int_value(item)
                    ranges.append((value, value))
            lines.append(f"    _size_constraint = {tuple(ranges)!r}")
        if "restricted-to" in node:
            ranges = []
            for item in node["restricted-to"]:
                if isinstance(item, tuple):
                    ranges.append((self.int_value(item[0]), self.int_value(item[1])))
                else:
                    value = self.int_value(item)
                    ranges.append((value, value))
            lines.append(f"    _value_range = {tuple(ranges)!r}")
        if "named-numbers" in node:
            mapping = {int(v): k for k, v in node["named-numbers"].items()}
            lines.append(f"    _map = {dict(sorted(mapping.items()))!r}")
        if "named-bits" in node:
            mapping = {int(v): k for k, v in node["named-bits"]}
            lines.append(f"    _map = {dict(sorted(mapping.items()))!r}")
        if "values" in node and node["type"] == "ENUMERATED":
            mapping = {}
            next_value = 0
            explicit_values = {v for item in node["values"] if item for _, v in [item]}
            for item in node["values"]:
                if item is None:
                    continue
                name, value = item
                if value is None:
                    while next_value in explicit_values:
                        next_value += 1
                    value = next_value
                    next_value += 1
                mapping[int(value)] = name
            lines.append(f"    _map = {dict(sorted(mapping.items()))!r}")
        return lines

    def needs_class(self, node: dict[str, Any]) -> bool:
        typ = node["type"]
        if typ in ("SEQUENCE", "SET", "SEQUENCE OF", "SET OF", "CHOICE", "ENUMERATED"):
            return True
        return any(k in node for k in ("size", "restricted-to", "named-numbers", "named-bits"))

    def type_ref(self, node: dict[str, Any], class_name: str, asn1_name: str) -> str:
        """Python expression for the (untagged-as-written) type of ``node``.

        Emits a class named ``class_name`` when one is needed.
        """
        typ = node["type"]
        if self.needs_class(node):
            self.emit_class(class_name, asn1_name, node, with_tag=False)
            return class_name
        if typ in BUILTIN:
            return BUILTIN[typ]
        if typ in IMPORTED:
            return IMPORTED[typ][0]
        return py_name(typ)

    def base_expr(self, node: dict[str, Any]) -> str:
        typ = node["type"]
        if typ in BUILTIN:
            return BUILTIN[typ]
        if typ in IMPORTED:
            return IMPORTED[typ][0]
        return py_name(typ)

    def field_params(self, member: dict[str, Any]) -> dict[str, Any]:
        """asn1crypto params of a component: tagging, OPTIONAL, DEFAULT."""
        params: dict[str, Any] = {}
        if "tag" in member:
            tag = member["tag"]
            cls = CLASS_NUM[tag.get("class", "CONTEXT")]
            kind = tag.get("kind")
            explicit = kind == "EXPLICIT" or (
                kind != "IMPLICIT"
                and (
                    self.tag_default == "EXPLICIT"
                    or self.is_untagged_choice({k: v for k, v in member.items() if k != "tag"})
                )
            )
            if explicit:
                params["explicit"] = (CLASS_NAME[cls], tag["number"])
            else:
                if self.explicit_assignment({k: v for k, v in member.items() if k != "tag"}):
                    raise NotImplementedError(f"{member['name']}: implicit tag on an EXPLICIT type")
                params["implicit"] = (CLASS_NAME[cls], tag["number"])
        if member.get("optional"):
            params["optional"] = True
        if "default" in member:
            if self.resolve(member)["type"] in ("SEQUENCE OF", "SET OF"):
                # PE-AKAParameter.sqnInit: a SEQUENCE OF with an OCTET STRING
                # as DEFAULT is not a valid value of the type; treated as
                # OPTIONAL (absent = the spec's default, present = as given).
                params["optional"] = True
            else:
                params["default"] = self.default_value(member)
        return params

    def default_value(self, member: dict[str, Any]) -> Any:
        value = member["default"]
        target = self.resolve(member)
        typ = target["type"]
        if typ == "OCTET STRING":
            assert isinstance(value, str), value
            assert value.startswith("0x"), value
            return bytes.fromhex(value[2:])
        if typ in ("INTEGER", "ENUMERATED"):
            if isinstance(value, str) and not value.lstrip("-").isdigit():
                return value  # a named number; asn1crypto maps it
            return int(value)
        if typ == "BOOLEAN":
            return bool(value)
        raise ValueError(f"unsupported DEFAULT {value!r} for {typ}")

    def emit_member_type(
        self, owner: str, owner_asn1: str, member: dict[str, Any]
    ) -> tuple[str, dict[str, Any]]:
        """Class expression and asn1crypto params for a SEQUENCE/CHOICE component."""
        name = member["name"]
        class_name = f"{owner}_{py_name(name)}"
        spec = self.type_ref(member, class_name, f"{owner_asn1}.{name}")
        params = self.field_params(member)
        if "implicit" in params:
            inner_tag = self.inner_explicit_choice_tag(member)
            if inner_tag is not None:
                # implicit retagging of a tagged CHOICE: only the identity case
                # ([n] T where T ::= [n] CHOICE) is expressible in asn1crypto.
                # X.680 §31.2.7: implicit tagging of a *tagged* CHOICE replaces
                # its outer (explicit) tag.  asn1crypto cannot retag a Choice
                # implicitly, so the replacement lives on the class: the same
                # tag needs nothing, another tag gets a subclass.
                wanted = params.pop("implicit")
                if wanted != inner_tag:
                    cls_num = {v: k for k, v in CLASS_NAME.items()}[wanted[0]]
                    retag = f"[{wanted[0].upper()} {wanted[1]}]"
                    self.classes[class_name] = [
                        f"class {class_name}({spec}):",
                        f'    """ASN.1 ``{owner_asn1}.{name}``: {spec} retagged {retag}."""',
                        "",
                        f"    _asn1_name = {owner_asn1 + '.' + name!r}",
                        f"    explicit = (({cls_num}, {wanted[1]}),)",
                    ]
                    self.deps[class_name] = {spec}
                    spec = class_name
        return spec, params

    def inner_explicit_choice_tag(self, node: dict[str, Any]) -> tuple[str, int] | None:
        """If the type of ``node`` (a reference) is a tagged CHOICE, its tag."""
        typ = node["type"]
        if typ in BUILTIN or typ in IMPORTED:
            return None
        ref = self.types[typ]
        while True:
            if "tag" in ref:
                if self.is_untagged_choice({"type": ref["type"]}):
                    tag = ref["tag"]
                    return (CLASS_NAME[CLASS_NUM[tag.get("class", "CONTEXT")]], tag["number"])
                return None
            if ref["type"] in BUILTIN or ref["type"] in IMPORTED:
                return None
            ref = self.types[ref["type"]]

    def emit_class(
        self, class_name: str, asn1_name: str, node: dict[str, Any], *, with_tag: bool
    ) -> None:
        if class_name in self.classes:
            raise ValueError(f"duplicate class name {class_name}")
        self.classes[class_name] = []  # reserve
        deps: set[str] = set()
        typ = node["type"]
        body: list[str] = [f"    _asn1_name = {asn1_name!r}"]
        if typ in BUILTIN and typ not in ("SEQUENCE", "SET", "SEQUENCE OF", "SET OF", "CHOICE"):
            base = BUILTIN[typ]
        elif typ == "SET":
            raise NotImplementedError(f"{asn1_name}: SET (no SET type in the supported modules)")
        elif typ == "SEQUENCE":
            base = BUILTIN[typ]
            fields = []
            for member in self.tagged_members(node):
                spec, params = self.emit_member_type(class_name, asn1_name, member)
                deps.add(spec)
                fields.append(f"        ({member['name']!r}, {spec}, {params!r}),")
            if fields:
                body.append("    _fields = [")
                body.extend(fields)
                body.append("    ]")
            else:
                body.append("    _fields = []")
        elif typ == "CHOICE":
            base = BUILTIN[typ]
            alts = []
            for member in self.tagged_members(node):
                spec, params = self.emit_member_type(class_name, asn1_name, member)
                deps.add(spec)
                alts.append(f"        ({member['name']!r}, {spec}, {params!r}),")
            body.append("    _alternatives = [")
            body.extend(alts)
            body.append("    ]")
        elif typ in ("SEQUENCE OF", "SET OF"):
            base = BUILTIN[typ]
            element = node["element"]
            elem_class = f"{class_name}_item"
            if "tag" in element:
                # the tag must live on the element class
                self.emit_tagged_alias(elem_class, f"{asn1_name}.item", element)
                elem = elem_class
            else:
                elem = self.type_ref(element, elem_class, f"{asn1_name}.item")
            deps.add(elem)
            body.append(f"    _child_spec = {elem}")
        else:
            # a reference (alias) with constraints
            base = self.base_expr(node)
            deps.add(base)
        body.extend(self.constraint_lines(node))
        if with_tag and "tag" in node:
            body.extend(self.tag_lines(node))
        lines = [f"class {class_name}({base}):"]
        doc = f"ASN.1 ``{asn1_name}``." if "." in asn1_name else f"ASN.1 type ``{asn1_name}``."
        lines.append(f'    """{doc}"""')
        lines.append("")
        lines.extend(body)
        self.classes[class_name] = lines
        self.deps[class_name] = {d for d in deps if not d.startswith(EXTERNAL)}

    def tag_lines(self, node: dict[str, Any]) -> list[str]:
        """Class attributes for the tag of a type assignment (or tagged element type).

        A tag on a CHOICE, tagged or not, becomes the class's explicit tag
        (implicitly retagging a tagged CHOICE replaces its outer tag).
        """
        tag = node["tag"]
        cls = CLASS_NUM[tag.get("class", "CONTEXT")]
        untagged = {k: v for k, v in node.items() if k != "tag"}
        is_choice = self.resolve(untagged)["type"] == "CHOICE"
        if is_choice and tag.get("kind") == "EXPLICIT" and not self.is_untagged_choice(untagged):
            raise NotImplementedError("an EXPLICIT tag on a tagged CHOICE")
        if is_choice or tag.get("kind") == "EXPLICIT":
            if not is_choice and self.has_tag(untagged):
                raise NotImplementedError("an EXPLICIT tag on a tagged type")
            return [f"    explicit = (({cls}, {tag['number']}),)"]
        return [f"    class_ = {cls}", f"    tag = {tag['number']}"]

    def explicit_assignment(self, node: dict[str, Any]) -> bool:
        """Whether ``node`` refers to a non-CHOICE type assigned with an EXPLICIT tag."""
        typ = node["type"]
        while typ not in BUILTIN and typ not in IMPORTED:
            ref = self.types[typ]
            if "tag" in ref:
                explicit: bool = ref["tag"].get("kind") == "EXPLICIT"
                return explicit and bool(self.resolve(ref)["type"] != "CHOICE")
            typ = ref["type"]
        return False

    def has_tag(self, node: dict[str, Any]) -> bool:
        """Whether the type of ``node`` (tags of ``node`` itself ignored) carries a tag."""
        typ = node["type"]
        while typ not in BUILTIN and typ not in IMPORTED:
            ref = self.types[typ]
            if "tag" in ref:
                return True
            typ = ref["type"]
        return False

    def emit_tagged_alias(self, class_name: str, asn1_name: str, node: dict[str, Any]) -> None:
        """A class for ``[tag] Type`` used where params cannot carry the tag."""
        untagged = {k: v for k, v in node.items() if k != "tag"}
        if self.needs_class(untagged):
            inner = self.type_ref(untagged, f"{class_name}_untagged", f"{asn1_name}")
        else:
            inner = self.base_expr(untagged)
        self.classes[class_name] = []
        lines = [
            f"class {class_name}({inner}):",
            f'    """ASN.1 ``{asn1_name}``."""',
            "",
            f"    _asn1_name = {asn1_name!r}",
        ]
        lines.extend(self.tag_lines(node))
        self.classes[class_name] = lines
        self.deps[class_name] = set() if inner.startswith(EXTERNAL) else {inner}

    def generate(self) -> str:
        for name, node in self.types.items():
            class_name = py_name(name)
            # every type assignment gets its own class (an alias is a
            # subclass) so that the ASN.1 name is kept
            self.emit_class(class_name, name, node, with_tag=True)
            self.public.append(class_name)
        # topological order
        done: set[str] = set()
        order: list[str] = []

        def visit(cls: str, stack: tuple[str, ...]) -> None:
            if cls in done:
                return
            if cls in stack:
                raise ValueError(f"recursive types are not supported: {' -> '.join(stack)}")
            for dep in sorted(self.deps.get(cls, ())):
                if dep in self.classes:
                    visit(dep, (*stack, cls))
            done.add(cls)
            order.append(cls)

        for cls in self.classes:
            visit(cls, ())
        out: list[str] = []
        for cls in order:
            out.extend(self.classes[cls])
            out.append("")
            out.append("")
        return "\n".join(out)

    def constants(self) -> tuple[list[str], list[str]]:
        lines = []
        names = []
        for name, value in self.values.items():
            const = py_name(name)
            if value["type"] == "OBJECT IDENTIFIER":
                dotted = ".".join(str(a) for a in self.oid_value(name))
                lines.append(f"{const}: Final = {dotted!r}")
                lines.append(f'"""OID ``{name}``."""')
            elif value["type"] == "INTEGER":
                lines.append(f"{const}: Final = {int(value['value'])}")
                lines.append(f'"""``{name} INTEGER ::= {value["value"]}``."""')
            else:
                raise ValueError(f"unsupported value assignment {name}")
            names.append(const)
        return lines, names


HEADER = '''\
"""{title}

Generated by tools/asn1gen.py from {source}; do not edit.

One class per ASN.1 type assignment (``-`` in names becomes ``_``),
anonymous inner types as ``Outer_field``; value assignments as constants.
See ``docs/asn1.md``.
"""

# ruff: noqa: RUF012, RUF022

from __future__ import annotations

from typing import Final
{imports}
from rspfed.asn1 import _base as b

'''


def generate(modules_dir: Path = MODULES) -> dict[str, str]:
    """Return ``{file name: source}`` for the generated modules."""
    import asn1tools

    sources = {
        "rsp.py": ("rsp.asn", "RSPDefinitions", "SGP.22 RSPDefinitions (ASN.1 schemas)."),
        "saip.py": (
            "PE_Definitions-3.3.1.asn",
            "PEDefinitions",
            "SIMalliance / TCA eUICC Profile Package (SAIP) PEDefinitions v3.3.1 (ASN.1 schemas).",
        ),
        "federation.py": (
            "federation.asn",
            "RSPFedFederation",
            "rspfed federation token RSPFedFederation (ASN.1 schemas).",
        ),
        "ledger.py": (
            "ledger.asn",
            "RSPFedLedger",
            "rspfed usage ledger RSPFedLedger (ASN.1 schemas).",
        ),
        "transfer.py": (
            "transfer.asn",
            "RSPFedTransfer",
            "rspfed pairing and transfer RSPFedTransfer (ASN.1 schemas).",
        ),
    }
    out = {}
    for filename, (asn, module_name, title) in sources.items():
        parsed = asn1tools.parse_files([str(modules_dir / asn)])[module_name]
        module = Module(module_name, parsed, asn)
        extra_lines = []
        if module_name == "RSPDefinitions":
            extra_lines = [
                "class SubjectKeyIdentifier(b.OctetString):",
                '    """PKIX ``SubjectKeyIdentifier`` (``KeyIdentifier ::= OCTET STRING``)."""',
                "",
                "    _asn1_name = 'SubjectKeyIdentifier'",
                "",
                "",
            ]
        body = module.generate()
        const_lines, const_names = module.constants()
        imports = "\nfrom asn1crypto import crl, x509\n" if module_name == "RSPDefinitions" else ""
        public = sorted(set(module.public) | ({"SubjectKeyIdentifier"} if extra_lines else set()))
        all_names = sorted(public + const_names)
        text = HEADER.format(title=title, source=f"rspfed/asn1/modules/{asn}", imports=imports)
        text += "__all__ = [\n" + "".join(f"    {n!r},\n" for n in all_names) + "]\n\n"
        text += "TYPE_NAMES: Final = {\n" + "".join(
            f"    {n!r}: {py_name(n)!r},\n" for n in sorted(module.types)
        ) + "}\n"
        text += '"""ASN.1 type name -> class name in this module."""\n\n'
        if const_lines:
            text += "\n".join(const_lines) + "\n\n"
        text += "\n" + "\n".join(extra_lines) + body
        text = text.rstrip() + "\n"
        if module_name in ("RSPFedFederation", "RSPFedLedger", "RSPFedTransfer"):
            # its __all__ is already in ruff's (isort-style) order
            text = text.replace("# ruff: noqa: RUF012, RUF022", "# ruff: noqa: RUF012", 1)
        out[filename] = text
    return out


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="only check files are up to date")
    args = parser.parse_args(argv)
    stale = []
    for filename, text in generate().items():
        path = OUT / filename
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(filename)
        else:
            path.write_text(text)
    if stale:
        print("out of date: " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
