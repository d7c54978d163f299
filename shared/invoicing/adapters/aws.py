"""S3 and SQS adapters. boto3 is imported on first use, so a cold start that never touches them
(most API routes) does not pay for it."""

from __future__ import annotations

import json
from typing import Any

from invoicing import root


def aws_client(service: str, region: str) -> Any:
    """The process's one boto3 client for `service` in `region` (held by its root)."""
    return root.current().once(("boto3", service, region), lambda: _build(service, region))


def _build(service: str, region: str) -> Any:
    import boto3
    from botocore.config import Config

    config = Config(
        signature_version="s3v4" if service == "s3" else None,
        retries={"max_attempts": 3, "mode": "standard"},
        s3={"addressing_style": "path"} if service == "s3" else None,
    )
    return boto3.client(service, region_name=region, config=config)


class DocumentStore:
    """PDFs and e-invoice XML in the documents bucket: SSE on, the right Content-Type and Content-Disposition."""

    def __init__(self, bucket: str, region: str) -> None:
        self.bucket = bucket
        self.region = region

    def put_pdf(self, key: str, body: bytes, filename: str) -> None:
        self._put(key, body, "application/pdf", f'inline; filename="{filename}"')

    def put_xml(self, key: str, body: bytes, filename: str) -> None:
        """An e-invoice beside its PDF (docs/einvoicing.md)."""
        self._put(key, body, "application/xml", f'attachment; filename="{filename}"')

    def _put(self, key: str, body: bytes, content_type: str, disposition: str) -> None:
        aws_client("s3", self.region).put_object(
            Bucket=self.bucket,
            Key=key,
            Body=body,
            ContentType=content_type,
            ContentDisposition=disposition,
            ServerSideEncryption="AES256",
        )

    def get_small(self, key: str, max_bytes: int) -> tuple[bytes, str]:
        """(body, content type) of a small object (the seller's logo); ValueError when it is larger."""
        answer = aws_client("s3", self.region).get_object(Bucket=self.bucket, Key=key)
        if int(answer.get("ContentLength") or 0) > max_bytes:
            answer["Body"].close()
            raise ValueError(f"{key} is larger than {max_bytes} bytes")
        return answer["Body"].read(max_bytes + 1), str(answer.get("ContentType") or "")

    def presigned_get(self, key: str, expires_in: int) -> str:
        return aws_client("s3", self.region).generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=expires_in
        )


class JobQueue:
    def __init__(self, queue_url: str, region: str) -> None:
        self.queue_url = queue_url
        self.region = region

    def send(self, body: dict[str, Any]) -> str:
        response = aws_client("sqs", self.region).send_message(QueueUrl=self.queue_url, MessageBody=json.dumps(body))
        return str(response["MessageId"])


class FifoJobQueue:
    """A FIFO queue: messages of one group are delivered in order, one group at a time; groups run in
    parallel. Sent 10 to a SendMessageBatch; an entry SQS refused is raised, not dropped (the caller's
    retry sends the whole run again, and the deduplication ids make that harmless for 5 minutes)."""

    def __init__(self, queue_url: str, region: str) -> None:
        self.queue_url = queue_url
        self.region = region

    def send_all(self, messages: list[tuple[str, str, dict[str, Any]]]) -> int:
        """`messages`: (group id, deduplication id, body). Returns how many were sent."""
        sqs = aws_client("sqs", self.region)
        for start in range(0, len(messages), 10):
            chunk = messages[start : start + 10]
            entries = [
                {
                    "Id": str(i),
                    "MessageBody": json.dumps(body),
                    "MessageGroupId": group,
                    "MessageDeduplicationId": dedup,
                }
                for i, (group, dedup, body) in enumerate(chunk)
            ]
            failed = sqs.send_message_batch(QueueUrl=self.queue_url, Entries=entries).get("Failed") or []
            if failed:
                raise RuntimeError(f"SQS refused {len(failed)} billing-run messages: {failed[0].get('Code')}")
        return len(messages)


class RunInputs:
    """Billing-run inputs in the documents bucket: one JSONL object per run, written by the API or
    uploaded by the client through a pre-signed PUT, read back as a stream of lines."""

    def __init__(self, bucket: str, region: str) -> None:
        self.bucket = bucket
        self.region = region

    def put(self, key: str, lines: list[str]) -> None:
        aws_client("s3", self.region).put_object(
            Bucket=self.bucket,
            Key=key,
            Body=("\n".join(lines) + "\n").encode(),
            ContentType="application/x-ndjson",
            ServerSideEncryption="AES256",
        )

    def presigned_put(self, key: str, expires_in: int) -> str:
        return str(
            aws_client("s3", self.region).generate_presigned_url(
                "put_object",
                Params={"Bucket": self.bucket, "Key": key, "ContentType": "application/x-ndjson"},
                ExpiresIn=expires_in,
            )
        )

    def size(self, key: str) -> int | None:
        """The object's size in bytes; None if it is absent."""
        s3 = aws_client("s3", self.region)
        try:
            return int(s3.head_object(Bucket=self.bucket, Key=key)["ContentLength"])
        except s3.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise

    def lines(self, key: str, max_bytes: int) -> Any:
        """The object's lines, streamed (never the whole object in memory); None if it is absent.
        Raises ValueError past `max_bytes`."""
        s3 = aws_client("s3", self.region)
        try:
            obj = s3.get_object(Bucket=self.bucket, Key=key)
        except s3.exceptions.NoSuchKey:
            return None
        if int(obj.get("ContentLength") or 0) > max_bytes:
            raise ValueError(f"the uploaded object is larger than {max_bytes} bytes")
        return (raw.decode("utf-8", errors="replace") for raw in obj["Body"].iter_lines())
