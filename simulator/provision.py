"""IoT things for the simulator: create (with keys, certificate, policy) and remove them.

``provision`` creates ``count`` things named ``<prefix>-<i>``; for each: a key pair and an
active certificate (``CreateKeysAndCertificate``), the deployed policy attached to the
certificate, and the certificate attached to the thing as its principal. Credentials are
written to ``<dir>/<thing>/certificate.pem.crt`` and ``private.pem.key`` (mode 0600, folders
0700), and ``<dir>/things.json`` lists what was created (the MQTT transport reads it; a
connection uses the thing name as its client id). ``deprovision`` undoes all of it, in the
order IoT requires (detach, deactivate, delete certificate, delete thing).
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from simulator.targets import TargetError, explain_aws_error

MANIFEST = "things.json"
CERT_FILE = "certificate.pem.crt"
KEY_FILE = "private.pem.key"


@dataclass(frozen=True)
class Thing:
    name: str
    certificate_arn: str
    certificate_id: str
    cert_path: Path
    key_path: Path


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(path, 0o600)


def _private_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)


def provision(iot: Any, policy_name: str, directory: Path, count: int, prefix: str) -> list[Thing]:
    if count < 1:
        raise TargetError("--count must be at least 1")
    if (directory / MANIFEST).exists():
        raise TargetError(
            f"{directory / MANIFEST} already exists: run `breakaway deprovision` first "
            "or pick another --dir"
        )
    _private_dir(directory)
    things: list[Thing] = []
    try:
        iot.get_policy(policyName=policy_name)
        for i in range(count):
            name = f"{prefix}-{i}"
            iot.create_thing(thingName=name)
            made = iot.create_keys_and_certificate(setAsActive=True)
            folder = directory / name
            _private_dir(folder)
            cert_path, key_path = folder / CERT_FILE, folder / KEY_FILE
            _write_private(cert_path, made["certificatePem"])
            _write_private(key_path, made["keyPair"]["PrivateKey"])
            arn = made["certificateArn"]
            iot.attach_policy(policyName=policy_name, target=arn)
            iot.attach_thing_principal(thingName=name, principal=arn)
            things.append(Thing(name, arn, made["certificateId"], cert_path, key_path))
            _write_manifest(directory, policy_name, things)
    except (BotoCoreError, ClientError) as exc:
        if things:
            _write_manifest(directory, policy_name, things)
        raise explain_aws_error(exc, "provision IoT things") from None
    return things


def _write_manifest(directory: Path, policy: str, things: list[Thing]) -> None:
    data = {
        "policy": policy,
        "things": [
            {
                "name": t.name,
                "certificateArn": t.certificate_arn,
                "certificateId": t.certificate_id,
                "cert": t.cert_path.name,
                "key": t.key_path.name,
            }
            for t in things
        ],
    }
    _write_private(directory / MANIFEST, json.dumps(data, indent=1) + "\n")


def load_things(directory: Path) -> tuple[str, list[Thing]]:
    try:
        raw = json.loads((directory / MANIFEST).read_text())
        things = [
            Thing(
                t["name"],
                t["certificateArn"],
                t["certificateId"],
                directory / t["name"] / t["cert"],
                directory / t["name"] / t["key"],
            )
            for t in raw["things"]
        ]
        return str(raw["policy"]), things
    except FileNotFoundError:
        raise TargetError(
            f"no IoT credentials in {directory}: run `breakaway provision` first "
            "(or pass --credentials)"
        ) from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise TargetError(f"{directory / MANIFEST} is damaged ({exc})") from None


def deprovision(iot: Any, directory: Path) -> list[str]:
    policy, things = load_things(directory)
    removed: list[str] = []
    try:
        for t in things:
            iot.detach_thing_principal(thingName=t.name, principal=t.certificate_arn)
            iot.detach_policy(policyName=policy, target=t.certificate_arn)
            iot.update_certificate(certificateId=t.certificate_id, newStatus="INACTIVE")
            iot.delete_certificate(certificateId=t.certificate_id)
            iot.delete_thing(thingName=t.name)
            removed.append(t.name)
            shutil.rmtree(directory / t.name, ignore_errors=True)
    except (BotoCoreError, ClientError) as exc:
        _write_manifest(directory, policy, [t for t in things if t.name not in removed])
        raise explain_aws_error(exc, "remove IoT things") from None
    (directory / MANIFEST).unlink()
    if not any(directory.iterdir()):
        directory.rmdir()
    return removed
