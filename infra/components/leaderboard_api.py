"""The leaderboard API: API Gateway REST API in front of the API Lambda.

The reads (``GET``) are public; the organiser's routes (``POST``: create a race, enter riders,
close, disqualify) are IAM-authorised, so API Gateway admits only requests signed (SigV4) by
a principal whose policy allows ``execute-api:Invoke`` on them. The function may write the
race records and entries the organiser's routes change (``PutItem``, ``UpdateItem``,
``ConditionCheckItem``); the stack (``infra/stacks.py``) gives it the close schedules' settings
and the Scheduler actions."""

from __future__ import annotations

from typing import Final

from aws_cdk import RemovalPolicy
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_logs as logs
from constructs import Construct

from functions.leaderboard_api.config import SECURITY_HEADERS
from infra.components.common import removal_policy, retention
from infra.components.function import PythonFunction
from infra.components.storage import grant_index_queries, grant_item_actions
from infra.config import ApiConfig, BreakawayConfig
from infra.nag import acknowledge
from shared import keys, names
from shared.routes import API_ROUTES as ROUTES
from shared.routes import Route

FUNCTION_NAME: Final = "leaderboard_api"


CATCH_ALL: Final = "{proxy+}"
GATEWAY_ERROR_TEMPLATE: Final = '{"message":$context.error.messageString}'
"""API Gateway's default gateway-response body (what it answers when none is customized)."""

_F = apigw.AccessLogField
ACCESS_LOG_FIELDS: Final = (
    ("requestId", _F.context_request_id()),
    ("ip", _F.context_identity_source_ip()),
    ("requestTime", _F.context_request_time()),
    ("httpMethod", _F.context_http_method()),
    ("resourcePath", _F.context_resource_path()),
    ("status", _F.context_status()),
    ("protocol", _F.context_protocol()),
    ("responseLength", _F.context_response_length()),
    ("responseLatency", _F.context_response_latency()),
    ("integrationStatus", _F.context_integration_status()),
    ("integrationLatency", _F.context_integration_latency()),
    ("integrationErrorMessage", _F.context_integration_error_message()),
    ("errorResponseType", _F.context_error_response_type()),
    ("xrayTraceId", _F.context_xray_trace_id()),
)
"""One JSON object per request. With execution logging off (docs/decisions.md), the error
fields say why a request failed: API Gateway's response type (``INTEGRATION_FAILURE``,
``INTEGRATION_TIMEOUT``, ``BAD_REQUEST_PARAMETERS``, ...), its message, the integration's status
and error, and the X-Ray trace to follow."""
QUOTED_ACCESS_LOG_FIELDS: Final = (("errorMessage", _F.context_error_message_string()),)
"""Variables that API Gateway renders already quoted as JSON strings (free text)."""


def access_log_format() -> str:
    """The access log line: ``ACCESS_LOG_FIELDS`` quoted, ``QUOTED_ACCESS_LOG_FIELDS`` as
    API Gateway quotes them."""
    fields = [f'"{key}":"{value}"' for key, value in ACCESS_LOG_FIELDS]
    fields += [f'"{key}":{value}' for key, value in QUOTED_ACCESS_LOG_FIELDS]
    return "{" + ",".join(fields) + "}"


ITEM_ACTIONS: Final = (
    "GetItem",
    "BatchGetItem",
    "Query",
    "PutItem",
    "UpdateItem",
    "BatchWriteItem",
    "ConditionCheckItem",
)
"""What the function calls on the table's items (functions/leaderboard_api/adapters.py,
shared/live_store.py, shared/race_store.py and shared/history_store.py): reads by key; a race's
record and live head, and its entries (``Query`` on the table); a page of a rider's history
(``Query`` of the rider's partition); a new race (``PutItem``); entries (``Put`` in a
transaction with the race record's ``Update``); an early close (``UpdateItem``); a
disqualification (an ``Update`` with a ``ConditionCheck`` of the race record); the live
ranking's builds (``BatchWriteItem`` of their chunks, ``UpdateItem`` of the head and its lease).
Never a scan or a delete."""
INDEXES: Final = (keys.INDEX_RECENT,)
"""Pages of the races index (listings)."""


class LeaderboardApi(Construct):
    """The API's function behind a REST API whose declared routes validate their parameters,
    the organiser's IAM-authorised, with access logs and throttling per stage."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: BreakawayConfig,
        standings: dynamodb.ITable,
    ) -> None:
        super().__init__(scope, construct_id)
        removal = removal_policy(config)
        self.handler = self._function(config, standings, removal)
        self.access_logs = logs.LogGroup(
            self,
            "AccessLogs",
            retention=retention(config.log_retention_days),
            removal_policy=removal,
        )
        self.api = self._rest_api(config.env_name, config.api)
        self._add_routes()
        self._gateway_responses()
        self._acknowledge_public_api()

    def _function(
        self, config: BreakawayConfig, standings: dynamodb.ITable, removal: RemovalPolicy
    ) -> PythonFunction:
        handler = PythonFunction(
            self,
            "Handler",
            function_name=FUNCTION_NAME,
            description="Leaderboard REST API and live page",
            config=config.api_function,
            environment={
                names.ENV_STANDINGS_TABLE: standings.table_name,
                names.ENV_CORS_ORIGIN: config.api.cors_origin,
                "POWERTOOLS_SERVICE_NAME": names.POWERTOOLS_SERVICE_API,
                "POWERTOOLS_METRICS_NAMESPACE": names.METRICS_NAMESPACE,
            },
            layer_arn=config.powertools_layer_arn,
            log_retention_days=config.log_retention_days,
            removal_policy=removal,
        )
        grant_item_actions(handler.function, standings, *ITEM_ACTIONS)
        grant_index_queries(handler.function, standings, *INDEXES)
        return handler

    def _rest_api(self, env_name: str, api_config: ApiConfig) -> apigw.RestApi:
        """The stage logs each request to the access log group; execution logging is off: API
        Gateway would write it to a group it creates outside the stack, kept forever and left
        behind by ``make destroy`` (docs/decisions.md)."""
        return apigw.RestApi(
            self,
            "Api",
            rest_api_name=names.api_name(env_name),
            description=f"Breakaway leaderboard ({env_name})",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            cloud_watch_role=True,
            default_cors_preflight_options=apigw.CorsOptions(
                allow_origins=api_config.cors_origins,
                allow_methods=["GET", "OPTIONS"],
            ),
            deploy_options=apigw.StageOptions(
                stage_name=api_config.stage_name,
                throttling_rate_limit=api_config.throttling_rate_limit,
                throttling_burst_limit=api_config.throttling_burst_limit,
                access_log_destination=apigw.LogGroupLogDestination(self.access_logs),
                access_log_format=apigw.AccessLogFormat.custom(access_log_format()),
                logging_level=apigw.MethodLoggingLevel.OFF,
                data_trace_enabled=False,
                tracing_enabled=True,
            ),
        )

    def _add_routes(self) -> None:
        """Every declared route with its method, the organiser's IAM-authorised, then the
        catch-all, so that an unknown path reaches the handler (a JSON 404) rather than API
        Gateway (a 403). The handler validates the organiser's bodies (its 422s name the
        field)."""
        validator = self.api.add_request_validator(
            "Parameters", validate_request_parameters=True, validate_request_body=True
        )
        integration = apigw.LambdaIntegration(self.handler.function, allow_test_invoke=False)
        for route in (*ROUTES, Route("/" + CATCH_ALL)):
            resource = self.api.root.resource_for_path(route.path)
            params = {f"method.request.path.{p}": True for p in route.path_params}
            params.update({f"method.request.querystring.{q}": False for q in route.query})
            resource.add_method(
                route.method,
                integration,
                authorization_type=apigw.AuthorizationType.IAM
                if route.organiser
                else apigw.AuthorizationType.NONE,
                request_validator=validator,
                request_parameters=params or None,
            )

    def _gateway_responses(self) -> None:
        """API Gateway's own answers (throttled, refused by the validator, a method with no
        route) carry the headers the handler puts on its own: they are JSON responses of the
        same origin. The body is API Gateway's default one, stated because a customized
        response without a template would answer with an empty body."""
        headers = {name: f"'{value}'" for name, value in SECURITY_HEADERS.items()}
        for construct_id, response_type in (
            ("Default4xx", apigw.ResponseType.DEFAULT_4_XX),
            ("Default5xx", apigw.ResponseType.DEFAULT_5_XX),
        ):
            self.api.add_gateway_response(
                construct_id,
                type=response_type,
                response_headers=headers,
                templates={"application/json": GATEWAY_ERROR_TEMPLATE},
            )

    def _acknowledge_public_api(self) -> None:
        acknowledge(
            self.api,
            "AwsSolutions-APIG3",
            "No web ACL on the API itself: viewers come through the CloudFront distribution, "
            "whose web ACL (on in prod, cdk.json cdn.waf_enabled) limits each client; the "
            "API's own URL serves the organiser (IAM-signed) and is bounded by stage throttling.",
        )
        acknowledge(
            self.api,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
            "AmazonAPIGatewayPushToCloudWatchLogs]",
            "API Gateway's account-level logging role (needed for access logs) uses the AWS "
            "managed policy API Gateway documents for it.",
        )
        acknowledge(
            self.api.deployment_stage,
            "AwsSolutions-APIG6",
            "Execution logging is off on purpose: API Gateway writes it to a log group it creates "
            "outside the stack, with no retention, that outlives the stack. The access log (one "
            "JSON line per request, with API Gateway's error type and message and the "
            "integration's status and error) and X-Ray traces cover what it would show.",
        )
        for rule in ("AwsSolutions-APIG4", "AwsSolutions-COG4"):
            acknowledge(
                self.api,
                rule,
                "The reads (GET) are public by design (the live page calls them from the "
                "browser); every method that changes data (POST, the organiser's) is "
                "IAM-authorised (SigV4).",
            )
