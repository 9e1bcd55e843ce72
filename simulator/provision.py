"""IoT things for the simulator: create (with keys, certificate, policy) and remove them.

``provision`` creates ``count`` things named ``<prefix>-<i>``; for each: a key pair and an
active certificate (``CreateKeysAndCertificate``), the deployed policy attached to the
certificate, and the certificate attached to the thing as its principal. Credentials are
written to ``<dir>/<thing>/certificate.pem.crt`` and ``private.pem.key`` (mode 0600, folders
0700), and ``<dir>/things.json`` lists what was created (the MQTT transport reads it; a
connection uses the thing name as its client id). ``deprovision`` undoes all of it, in the
order IoT requires (detach, deactivate, delete certificate, delete thing), waiting for IoT where
it detaches asynchronously. ``release_policy`` detaches a policy from whatever still holds it, so
that CloudFormation can delete the policy with its stack (``make destroy``).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from botocore.exceptions import BotoCoreError, ClientError

from shared.retry import Backoff, UnfinishedError, resend
from simulator.targets import TargetError, explain_aws_error

MANIFEST = "things.json"
CERT_FILE = "certificate.pem.crt"
KEY_FILE = "private.pem.key"
DETACH_WAIT: Final = Backoff(attempts=10, base_s=0.5, cap_s=8.0)
"""DetachThingPrincipal is asynchronous: AWS's API reference says the detachment may take
several seconds to propagate, and until it has, DeleteCertificate fails with
DeleteConflictException and DeleteThing with "still attached". Each pass over the things left
waits up to this long (full jitter, up to about 48 s in all) before it tries them again."""


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


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _gone(exc: ClientError) -> bool:
    """The thing, certificate, policy or attachment is not there (any more): nothing to undo."""
    return _code(exc) == "ResourceNotFoundException"


def _conflict(exc: ClientError) -> bool:
    """IoT refused a delete because a detachment has not propagated yet: try again later."""
    message = str(exc.response.get("Error", {}).get("Message", ""))
    return _code(exc) == "DeleteConflictException" or (
        _code(exc) == "InvalidRequestException" and "attached" in message
    )


def _unless_gone(call: Callable[..., Any], **kwargs: Any) -> None:
    """``call(**kwargs)``; already undone is done (a second deprovision after a failed one)."""
    try:
        call(**kwargs)
    except ClientError as exc:
        if not _gone(exc):
            raise


def _still_attached(iot: Any, thing: Thing) -> bool:
    try:
        principals = iot.list_thing_principals(thingName=thing.name)["principals"]
    except ClientError as exc:
        if _gone(exc):
            return False
        raise
    return thing.certificate_arn in principals


class _Removal:
    """One pass over the things not yet removed (``resend`` calls it until none is left): a
    thing whose certificate IoT still lists, or whose delete IoT refuses with a conflict, waits
    for the next pass; every other error ends the removal."""

    def __init__(self, iot: Any, policy: str, directory: Path) -> None:
        self.iot, self.policy, self.directory = iot, policy, directory
        self.removed: list[str] = []

    def __call__(self, pending: list[Thing]) -> list[Thing]:
        left: list[Thing] = []
        for thing in pending:
            if _still_attached(self.iot, thing):
                left.append(thing)
                continue
            try:
                self._remove(thing)
            except ClientError as exc:
                if not _conflict(exc):
                    raise
                left.append(thing)
        return left

    def _remove(self, t: Thing) -> None:
        iot = self.iot
        _unless_gone(iot.detach_policy, policyName=self.policy, target=t.certificate_arn)
        _unless_gone(iot.update_certificate, certificateId=t.certificate_id, newStatus="INACTIVE")
        _unless_gone(iot.delete_certificate, certificateId=t.certificate_id)
        _unless_gone(iot.delete_thing, thingName=t.name)
        self.removed.append(t.name)
        shutil.rmtree(self.directory / t.name, ignore_errors=True)


def deprovision(
    iot: Any,
    directory: Path,
    *,
    wait: Backoff = DETACH_WAIT,
    sleep: Callable[[float], None] = time.sleep,
) -> list[str]:
    """Remove the things of ``directory``'s manifest, their certificates and credentials. A
    failure leaves the manifest listing what is left, so that running it again finishes."""
    policy, things = load_things(directory)
    removal = _Removal(iot, policy, directory)
    try:
        for t in things:
            _unless_gone(iot.detach_thing_principal, thingName=t.name, principal=t.certificate_arn)
        resend(removal, things, wait, what="IoT still holds things and certificates", sleep=sleep)
    except UnfinishedError as exc:
        _write_manifest(directory, policy, [t for t in things if t.name not in removal.removed])
        raise TargetError(f"{exc}: run `breakaway deprovision` again in a minute") from None
    except (BotoCoreError, ClientError) as exc:
        _write_manifest(directory, policy, [t for t in things if t.name not in removal.removed])
        raise explain_aws_error(exc, "remove IoT things") from None
    (directory / MANIFEST).unlink()
    if not any(directory.iterdir()):
        directory.rmdir()
    return removal.removed


def policy_targets(iot: Any, policy: str) -> list[str]:
    """What the policy is attached to (certificate ARNs); none when the policy is gone."""
    try:
        pages = iot.get_paginator("list_targets_for_policy").paginate(policyName=policy)
        return [target for page in pages for target in page["targets"]]
    except ClientError as exc:
        if _gone(exc):
            return []
        raise


def release_policy(
    iot: Any,
    policy: str,
    *,
    wait: Backoff = DETACH_WAIT,
    sleep: Callable[[float], None] = time.sleep,
) -> list[str]:
    """Detach ``policy`` from every target still holding it, and wait until IoT lists none:
    CloudFormation cannot delete an attached policy, and a stack delete would stop there
    (DELETE_FAILED). The certificates stay: whoever made them may still want them."""

    def detach(pending: list[str]) -> list[str]:
        for target in pending:
            _unless_gone(iot.detach_policy, policyName=policy, target=target)
        return policy_targets(iot, policy)

    try:
        targets = policy_targets(iot, policy)
        if targets:
            resend(detach, targets, wait, what=f"the IoT policy {policy} is attached", sleep=sleep)
    except UnfinishedError as exc:
        raise TargetError(f"{exc}: run it again in a minute") from None
    except (BotoCoreError, ClientError) as exc:
        raise explain_aws_error(exc, f"detach the IoT policy {policy}") from None
    return targets
