"""Small readers over synthesized templates (plain dicts)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
CDK_JSON = REPO / "cdk.json"
NAG_FILE = "nag-summary.json"
JSII_ENV = {"JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20", "CDK_DISABLE_VERSION_CHECK": "1"}


def cdk_context(env_name: str) -> dict[str, Any]:
    context: dict[str, Any] = json.loads(CDK_JSON.read_text())["context"]
    return {**context, "env": env_name}


def offline_environment(**extra: str) -> dict[str, str]:
    """No AWS credentials or config, no instance metadata, and any HTTP(S) call fails fast."""
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "CDK_DEFAULT_"))}
    return {
        **keep,
        **JSII_ENV,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "HTTP_PROXY": "http://127.0.0.1:9",
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "NO_PROXY": "",
        **extra,
    }


@dataclass
class Assembly:
    outdir: Path
    stacks: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def read(cls, outdir: Path) -> Assembly:
        assembly = cls(outdir=outdir)
        for path in sorted(outdir.glob("*.template.json")):
            assembly.stacks[path.name.removesuffix(".template.json")] = json.loads(path.read_text())
        return assembly

    def template(self, part: str) -> dict[str, Any]:
        (name,) = [n for n in self.stacks if n.endswith(f"-{part}")]
        return self.stacks[name]

    def resources(self, part: str, type_: str) -> dict[str, dict[str, Any]]:
        return {lid: r for lid, r in self.template(part)["Resources"].items() if r["Type"] == type_}

    def one(self, part: str, type_: str) -> dict[str, Any]:
        found = self.resources(part, type_)
        assert len(found) == 1, f"expected one {type_} in {part}, found {sorted(found)}"
        return next(iter(found.values()))

    def manifest(self) -> dict[str, Any]:
        manifest: dict[str, Any] = json.loads((self.outdir / "manifest.json").read_text())
        return manifest

    def nag(self) -> dict[str, Any]:
        """``findings`` (cdk-nag before acknowledgments) and ``acknowledgments`` (dev only)."""
        summary: dict[str, Any] = json.loads((self.outdir / NAG_FILE).read_text())
        return summary

    def validation_report(self) -> dict[str, Any]:
        report: dict[str, Any] = json.loads((self.outdir / "validation-report.json").read_text())
        return report


def exported(assembly: Assembly, value: Any) -> Any:
    """What an ``Fn::ImportValue`` in the App stack points at in the Data stack."""
    assert isinstance(value, dict), value
    assert set(value) == {"Fn::ImportValue"}, value
    name = value["Fn::ImportValue"]
    for output in assembly.template("Data")["Outputs"].values():
        if output.get("Export", {}).get("Name") == name:
            return output["Value"]
    raise AssertionError(f"no export named {name}")


def logical_id_of(ref: Any) -> str:
    """The logical id a ``Ref`` or ``Fn::GetAtt`` names."""
    if "Ref" in ref:
        return str(ref["Ref"])
    return str(ref["Fn::GetAtt"][0])


def joined(value: Any) -> str:
    """An ``Fn::Join`` of literals and pseudo parameters, with ``${Ref}`` for references."""
    if isinstance(value, str):
        return value
    if "Fn::Join" in value:
        sep, parts = value["Fn::Join"]
        return str(sep).join(joined(p) for p in parts)
    if "Ref" in value:
        return "${" + str(value["Ref"]) + "}"
    if "Fn::ImportValue" in value:
        return "${Import:" + str(value["Fn::ImportValue"]) + "}"
    if "Fn::GetAtt" in value:
        return "${" + ".".join(value["Fn::GetAtt"]) + "}"
    raise AssertionError(f"cannot render {value}")


def role_statements(assembly: Assembly, part: str, role_id: str) -> list[dict[str, Any]]:
    statements: list[dict[str, Any]] = []
    for policy in assembly.resources(part, "AWS::IAM::Policy").values():
        if {"Ref": role_id} in policy["Properties"]["Roles"]:
            statements.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return statements


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def role_grants(assembly: Assembly, role_id: str) -> dict[str, list[str]]:
    """Each action an App stack role holds -> the resources (rendered, in template order) it
    holds it on; every statement an Allow, unconditional but for the one passing the scheduler's
    role (``tests/infra/test_stacks.py`` asserts it is the only conditional grant)."""
    grants: dict[str, list[str]] = {}
    for statement in role_statements(assembly, "App", role_id):
        assert statement["Effect"] == "Allow"
        assert "Condition" not in statement or statement["Action"] == "iam:PassRole"
        for action in as_list(statement["Action"]):
            grants.setdefault(action, []).extend(joined(r) for r in as_list(statement["Resource"]))
    return grants


def function_grants(assembly: Assembly, handler: str) -> dict[str, list[str]]:
    """:func:`role_grants` of the role of the function with ``handler``."""
    _, fn = function_by_handler(assembly, handler)
    return role_grants(assembly, logical_id_of(fn["Properties"]["Role"]))


def import_of(assembly: Assembly, lid: str, attribute: str) -> str:
    """How a Data stack resource's attribute renders once imported into the App stack."""
    for output in assembly.template("Data")["Outputs"].values():
        if output["Value"] == {"Fn::GetAtt": [lid, attribute]}:
            return "${Import:" + str(output["Export"]["Name"]) + "}"
    raise AssertionError(f"{lid}.{attribute} is not exported")


def function_by_handler(assembly: Assembly, handler: str) -> tuple[str, dict[str, Any]]:
    found = [
        (lid, r)
        for lid, r in assembly.resources("App", "AWS::Lambda::Function").items()
        if r["Properties"].get("Handler") == handler
    ]
    assert len(found) == 1, f"expected one function with handler {handler}"
    return found[0]


@dataclass
class Synths:
    dev: Assembly
    prod: Assembly
