"""Logger, tracer and metrics, created once. Log lines are lower-case with structured keys.

Never log a payment token, an API key or an Authorization header: the tests capture the logs and
search them for those values.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer

logger = Logger(service="invoicing")
tracer = Tracer(service="invoicing")
metrics = Metrics(namespace="Invoicing", service="invoicing")
