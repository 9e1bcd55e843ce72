"""`breakaway deprovision` against IoT as AWS documents it: DetachThingPrincipal is
asynchronous, and until the detachment has propagated IoT refuses the deletes that follow it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from shared.retry import Backoff
from simulator.provision import deprovision, load_things, policy_targets, provision, release_policy
from simulator.targets import TargetError


class AsyncDetach:
    """moto's IoT client with DetachThingPrincipal as AWS documents it, asynchronous: the thing
    keeps listing the certificate for ``lag`` more ListThingPrincipals calls, and the first
    DeleteCertificate of each certificate is refused with DeleteConflictException."""

    def __init__(self, client: Any, lag: int) -> None:
        self._client = client
        self.lag = lag
        self.detaching: dict[str, tuple[str, int]] = {}
        self.refused: set[str] = set()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def detach_thing_principal(self, *, thingName: str, principal: str) -> Any:  # noqa: N803
        self.detaching[principal] = (thingName, self.lag)
        return self._client.detach_thing_principal(thingName=thingName, principal=principal)

    def list_thing_principals(self, *, thingName: str) -> Any:  # noqa: N803
        listed = self._client.list_thing_principals(thingName=thingName)
        for arn, (thing, left) in list(self.detaching.items()):
            if thing == thingName and left > 0:
                self.detaching[arn] = (thing, left - 1)
                listed = {**listed, "principals": [*listed["principals"], arn]}
        return listed

    def delete_certificate(self, *, certificateId: str) -> Any:  # noqa: N803
        if certificateId not in self.refused:
            self.refused.add(certificateId)
            raise ClientError(
                {
                    "Error": {
                        "Code": "DeleteConflictException",
                        "Message": "Things must be detached before deletion",
                    }
                },
                "DeleteCertificate",
            )
        return self._client.delete_certificate(certificateId=certificateId)


QUICK = Backoff(attempts=6, base_s=0.01, cap_s=0.05)


def test_deprovision_waits_for_the_asynchronous_detach(iot: Any, tmp_path: Path) -> None:
    folder = tmp_path / "iot"
    certificates = {t.certificate_id for t in provision(iot, "sim-policy", folder, 3, "sim")}
    slept: list[float] = []
    flaky = AsyncDetach(iot, lag=2)

    assert deprovision(flaky, folder, wait=QUICK, sleep=slept.append) == ["sim-0", "sim-1", "sim-2"]

    assert flaky.refused == certificates
    assert iot.list_certificates()["certificates"] == []
    assert iot.list_things()["things"] == []
    assert not folder.exists()
    # Two passes while the things still list their certificates, one refused delete each.
    assert len(slept) == 3
    assert all(0 <= s <= QUICK.cap_s for s in slept)


def test_deprovision_that_runs_out_of_patience_can_be_run_again(iot: Any, tmp_path: Path) -> None:
    folder = tmp_path / "iot"
    provision(iot, "sim-policy", folder, 2, "sim")
    slept: list[float] = []
    stuck = AsyncDetach(iot, lag=100)

    with pytest.raises(TargetError, match=r"run `breakaway deprovision` again in a minute$"):
        deprovision(stuck, folder, wait=QUICK, sleep=slept.append)

    assert len(slept) == QUICK.attempts - 1
    assert [t.name for t in load_things(folder)[1]] == ["sim-0", "sim-1"]
    # Once IoT has caught up, the same command finishes (the detach is already done).
    assert deprovision(iot, folder, wait=QUICK, sleep=slept.append) == ["sim-0", "sim-1"]
    assert iot.list_things()["things"] == []
    assert iot.list_certificates()["certificates"] == []


def test_release_policy_frees_the_policy_for_its_stack_delete(iot: Any, tmp_path: Path) -> None:
    provision(iot, "sim-policy", tmp_path / "a", 2, "a")
    stray = iot.create_keys_and_certificate(setAsActive=True)["certificateArn"]
    iot.attach_policy(policyName="sim-policy", target=stray)
    assert len(policy_targets(iot, "sim-policy")) == 3

    released = release_policy(iot, "sim-policy", wait=QUICK, sleep=lambda _: None)

    assert len(released) == 3
    assert stray in released
    assert policy_targets(iot, "sim-policy") == []
    iot.delete_policy(policyName="sim-policy")  # what CloudFormation does on stack delete
    assert policy_targets(iot, "sim-policy") == []  # a deleted policy holds nothing
    assert len(iot.list_certificates()["certificates"]) == 3  # the certificates stay
