"""Every price the capacity model uses: us-east-1, on-demand, first tier, as of ``PRICE_DATE``.

Each price names the public page it comes from and says whether the figure was seen (the
search corpus available to this project showed it; docs/capacity.md cites where) or is assumed
(the author's reading of the public page, not re-verified). docs/capacity.md's price table
says the same in prose.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Final

ASSUMED: Final = "assumed"


@dataclass(frozen=True)
class Price:
    usd: float
    per: str
    page: str
    checked: str = ASSUMED
    """``seen: ...`` with where the figure was seen, or ``assumed``."""


PRICE_DATE: Final = "2026-11-22"
REGION: Final = "us-east-1"
KINESIS: Final = "Amazon Kinesis Data Streams pricing"
IOT: Final = "AWS IoT Core pricing"
LAMBDA: Final = "AWS Lambda pricing"
DYNAMODB: Final = "Amazon DynamoDB pricing"
FIREHOSE: Final = "Amazon Data Firehose pricing"
LAMBDA_SEEN: Final = "seen: third-party copies of the AWS Lambda pricing page (US East)"
CLOUDFRONT: Final = "Amazon CloudFront pricing"
WAF: Final = "AWS WAF pricing"
WAF_SEEN: Final = (
    "seen: third-party summaries of the AWS WAF pricing page (c3x.dev, awsnegotiations.com, "
    "2026); the AWS networking blog names the same three meters"
)

PRICES: Final[dict[str, Price]] = {
    "kinesis_shard_hour": Price(
        0.015, "shard-hour", KINESIS, "seen in a third-party worked example only"
    ),
    "kinesis_put_payload_units": Price(
        0.014,
        "million PUT payload units (25 KB)",
        KINESIS,
        "seen: $0.014 quoted from the Kinesis pricing page (us-west-2)",
    ),
    "kinesis_on_demand_stream_hour": Price(
        0.04, "stream-hour", "Amazon Kinesis Data Streams pricing (on-demand)"
    ),
    "kinesis_on_demand_in_gb": Price(0.08, "GB written (records rounded up to 1 KB)", KINESIS),
    "kinesis_on_demand_out_gb": Price(0.04, "GB read per consumer", KINESIS),
    "iot_connectivity": Price(
        0.08,
        "million connection-minutes",
        IOT,
        "seen: transcription of aws.amazon.com/iot-core/pricing (read 2026-09-20)",
    ),
    "iot_messaging": Price(
        1.00,
        "million messages (5 KB metered)",
        IOT,
        "seen: same transcription; 5 KB metering: iot-core/pricing/additional-details",
    ),
    "iot_rules_triggered": Price(0.15, "million rules triggered", IOT),
    "iot_actions": Price(0.15, "million actions executed", IOT),
    "lambda_requests": Price(0.20, "million requests", LAMBDA, LAMBDA_SEEN),
    "lambda_gb_second_arm": Price(0.0000133334, "GB-second (arm64)", LAMBDA, LAMBDA_SEEN),
    "dynamodb_wru": Price(0.625, "million write request units", DYNAMODB),
    "dynamodb_rru": Price(0.125, "million read request units", DYNAMODB),
    "firehose_ingest_gb": Price(0.029, "GB ingested (records rounded up to 5 KB)", FIREHOSE),
    "s3_standard_gb_month": Price(0.023, "GB-month", "Amazon S3 pricing"),
    "cloudfront_https_requests": Price(
        0.0100,
        "10,000 HTTPS requests (United States, Mexico, Canada)",
        CLOUDFRONT,
        "seen in a third-party lesson (kindatechnical.com, HTTP $0.0075, HTTPS $0.0100)",
    ),
    "cloudfront_data_out_gb": Price(
        0.085,
        "GB out to the internet (United States, Europe, first 10 TB a month)",
        CLOUDFRONT,
        "seen: aws.amazon.com/cloudfront/pricing (the regional data transfer table)",
    ),
    "cloudfront_origin_shield_requests": Price(
        0.0075, "10,000 requests into Origin Shield (us-east-1)", CLOUDFRONT
    ),
    "cloudfront_function_invocations": Price(
        0.10,
        "million CloudFront Function invocations",
        CLOUDFRONT,
        "seen: cur.vantage.sh's CloudFront usage types ($0.10 per 1 million invocations)",
    ),
    "waf_web_acl_month": Price(5.00, "web ACL a month", WAF, WAF_SEEN),
    "waf_rule_month": Price(1.00, "rule a month", WAF, WAF_SEEN),
    "waf_requests": Price(0.60, "million requests inspected", WAF, WAF_SEEN),
    "apigw_rest_requests": Price(
        3.50, "million REST API requests (first 333 million a month)", "Amazon API Gateway pricing"
    ),
    "cloudwatch_logs_gb": Price(0.50, "GB of logs ingested", "Amazon CloudWatch pricing"),
    "xray_traces": Price(5.00, "million traces recorded", "AWS X-Ray pricing"),
    "scheduler_invocations": Price(
        1.00,
        "million scheduled invocations (after 14 million free a month)",
        "Amazon EventBridge pricing (EventBridge Scheduler)",
    ),
}


def usd(key: str, quantity: float) -> float:
    """The cost of ``quantity`` units of ``PRICES[key]`` (units per the price's ``per``)."""
    price = PRICES[key]
    per = price.per
    scale = (
        1e6
        if per.startswith("million")
        else 1e4
        if per.startswith("10,000")
        else 1e3
        if per.startswith("1,000")
        else 1
    )
    return price.usd * quantity / scale


def price_table() -> dict[str, dict[str, Any]]:
    """Every price as the ``--json`` output lists it."""
    return {key: asdict(price) for key, price in PRICES.items()}
