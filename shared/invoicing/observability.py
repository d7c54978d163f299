"""Logger, tracer and metrics, created once. Log lines are lower-case with structured keys.

Never log a payment token, an API key or an Authorization header: the tests capture the logs and
search them for those values.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer

logger = Logger(service="invoicing")
# Patch only botocore (PynamoDB and boto3 go through it): auto-patching imports every library X-Ray
# knows, which costs the API's cold start without tracing anything we use.
tracer = Tracer(service="invoicing", auto_patch=False)
tracer.patch(["botocore"])
metrics = Metrics(namespace="Invoicing", service="invoicing")
