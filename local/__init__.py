"""Docker-free local runtime of the SAM template: ``python -m local --port 3000`` (``make dev``).

moto's server is the local AWS, except DynamoDB: DynamoDB Local (AWS's own engine, Java) serves it
when Java is there; functions run in-process; API Gateway, SQS event sources and schedules are
emulated from ``template.yaml``. See ``local/runtime.py`` for the moving parts.
"""

from .runtime import LocalRuntime, RuntimeOptions

__all__ = ["LocalRuntime", "RuntimeOptions"]
