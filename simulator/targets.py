"""Where to send: the local stack's endpoints file, or a deployed stack found through AWS.

``local``: ``.breakaway/endpoints.json`` (written by ``breakaway up``) with the keys
``aws_endpoint_url``, ``region``, ``mqtt_host``, ``mqtt_port``, ``api_url``, ``stream_name``,
``archive_bucket``. The emulator accepts any credentials; dummy ones are used.

``aws``: the normal boto3 configuration (profile, environment, instance role). The stream
name, the API's URL and the IoT policy come from the outputs of one environment's stacks
(``Breakaway-<Env>-Data`` and ``-App``, ``shared.names.stack_name``) unless given explicitly:
dev and prod may share an account and region, and each command acts on the one ``--env`` names.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
)

from shared.names import LOCAL_ENDPOINTS_FILE, OUTPUT_API_URL, STACK_PARTS, stack_name
from simulator.organiser import Organiser, SigV4Signer, region_of

LOCAL_ACCESS_KEY = "breakaway-local"
LOCAL_SECRET_KEY = "breakaway-local"  # noqa: S105 (the emulator accepts anything)
NO_CREDENTIALS = (
    "no AWS credentials found: configure them (aws configure, AWS_PROFILE or "
    "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY), or use --target local"
)
NO_REGION = "no AWS region configured: pass --region or set AWS_REGION (or AWS_DEFAULT_REGION)"


class TargetError(Exception):
    """One line: what is wrong and what to do."""


@dataclass(frozen=True)
class LocalEndpoints:
    aws_endpoint_url: str
    region: str
    mqtt_host: str
    mqtt_port: int
    stream_name: str
    api_url: str | None = None
    archive_bucket: str | None = None


def load_local_endpoints(path: str | Path = LOCAL_ENDPOINTS_FILE) -> LocalEndpoints:
    p = Path(path)
    try:
        raw = json.loads(p.read_text())
    except FileNotFoundError:
        raise TargetError(
            f"{p} not found: start the local stack first (`breakaway up`), or use --target aws"
        ) from None
    except (OSError, json.JSONDecodeError) as exc:
        raise TargetError(f"{p} is unreadable ({exc}): restart the local stack") from None
    try:
        return LocalEndpoints(
            aws_endpoint_url=str(raw["aws_endpoint_url"]),
            region=str(raw["region"]),
            mqtt_host=str(raw["mqtt_host"]),
            mqtt_port=int(raw["mqtt_port"]),
            stream_name=str(raw["stream_name"]),
            api_url=raw.get("api_url"),
            archive_bucket=raw.get("archive_bucket"),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise TargetError(f"{p} lacks {exc}: restart the local stack (`breakaway up`)") from None


def explain_aws_error(exc: Exception, what: str) -> TargetError:
    if isinstance(exc, NoCredentialsError):
        return TargetError(NO_CREDENTIALS)
    if isinstance(exc, NoRegionError):
        return TargetError(NO_REGION)
    if isinstance(exc, EndpointConnectionError):
        return TargetError(f"cannot reach AWS to {what} ({exc}): check the network and region")
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        return TargetError(f"AWS refused to {what} ({err.get('Code')}: {err.get('Message')})")
    return TargetError(f"could not {what}: {exc}")


def _not_deployed(exc: ClientError) -> bool:
    """DescribeStacks names a stack that does not exist (CloudFormation says so this way)."""
    err = exc.response.get("Error", {})
    return err.get("Code") == "ValidationError" and "does not exist" in str(err.get("Message"))


def stack_outputs(session: boto3.Session, env: str, region: str | None = None) -> dict[str, str]:
    """The outputs of the environment's stacks, by output key; a stack not deployed adds none."""
    names = [stack_name(env, part) for part in STACK_PARTS]
    try:
        cfn: Any = session.client("cloudformation", region_name=region)
        outputs: dict[str, str] = {}
        for name in names:
            try:
                (stack,) = cfn.describe_stacks(StackName=name)["Stacks"]
            except ClientError as exc:
                if _not_deployed(exc):
                    continue
                raise
            for out in stack.get("Outputs", []):
                outputs[out["OutputKey"]] = out["OutputValue"]
    except (BotoCoreError, ClientError) as exc:
        raise explain_aws_error(exc, f"read the stacks {' and '.join(names)}") from None
    return outputs


def stack_output(
    session: boto3.Session, env: str, key: str, option: str, region: str | None = None
) -> str:
    value = stack_outputs(session, env, region).get(key)
    if not value:
        raise TargetError(
            f"the {env} environment has no deployed stack with the output {key!r} "
            f"({' or '.join(stack_name(env, part) for part in STACK_PARTS)}): deploy it "
            f"(`make deploy ENV={env}`) or pass {option}"
        )
    return value


def iot_data_endpoint(session: boto3.Session, region: str | None = None) -> str:
    try:
        iot: Any = session.client("iot", region_name=region)
        address: str = iot.describe_endpoint(endpointType="iot:Data-ATS")["endpointAddress"]
    except (BotoCoreError, ClientError) as exc:
        raise explain_aws_error(exc, "find the IoT data endpoint") from None
    return address


def organiser_for(
    target: str,
    *,
    env: str,
    endpoints_file: str | Path = LOCAL_ENDPOINTS_FILE,
    region: str | None = None,
    api_url: str | None = None,
) -> Organiser:
    """The organiser's API of the local stack (its endpoints file's ``api_url``, no credentials)
    or of a deployed environment (the stack output ``ApiUrl``; each request signed with the
    caller's AWS credentials). ``api_url`` overrides where."""
    if target == "local":
        url = api_url or load_local_endpoints(endpoints_file).api_url
        if not url:
            raise TargetError(
                f"{endpoints_file} names no API: restart the local stack (`breakaway up`)"
            )
        return Organiser(url)
    session = boto3.Session(region_name=region) if region else boto3.Session()
    url = api_url or stack_output(session, env, OUTPUT_API_URL, "--api-url", region)
    credentials = session.get_credentials()
    if credentials is None:
        raise TargetError(NO_CREDENTIALS)
    signing_region = region_of(url) or region or session.region_name
    if not signing_region:
        raise TargetError(NO_REGION)
    return Organiser(url, SigV4Signer(credentials, signing_region))
