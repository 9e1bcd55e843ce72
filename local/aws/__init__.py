"""What stands in for each AWS service in the local stack: one module per service.

========================  =====================================================================
module                    stands in for
========================  =====================================================================
``moto_server``           the AWS APIs (Kinesis, DynamoDB, S3, SQS, Scheduler): moto in server
                          mode
``moto_patches``          every patch the project makes to moto's internals, and why
``iot_broker``            IoT Core's MQTT broker (aedes on Node, amqtt as the fallback)
``iot_rule``              IoT Core's topic rule: SQL ``SELECT *``, substitution templates, the
                          Kinesis action (the rule bridge)
``lambda_runtime``        Lambda's context object and execution environments
``lambda_esm``            what every Lambda event source mapping does (batching, invoking,
                          partial batch responses, stopping, statistics)
``kinesis_esm``           the Kinesis event source mapping (shards, checkpoints, bisect,
                          retries, record age, on-failure destination)
``scheduler``             EventBridge Scheduler's one-time schedules: at their time, the target
                          invoked with the schedule's Input, retries, dead-letter queue, deletion
                          after completion (the schedules themselves live in moto)
``firehose``              the Firehose delivery stream to the S3 archive
``api_gateway``           API Gateway's REST API with the Lambda proxy integration
========================  =====================================================================

``docs/architecture.md`` (The local stack) says what each emulates and what it does not.
These modules import ``shared``, each other and the process plumbing (``local.procs``,
``local.component``), never the stack, the CLI or the demo: the orchestration sits above them
in ``local``.
"""
