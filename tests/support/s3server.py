"""A real S3-compatible server for tests: moto's standalone server over HTTP on loopback.

``python -m moto.server`` (installed by the ``test`` extra as moto[s3] with flask and flask-cors).

moto emulates the S3 REST API in one process and keeps objects in memory; a stopped server loses
its buckets (tests that restart it create the bucket again). It accepts any credentials and does
not enforce Content-MD5, so tests check ecert's own SHA-256 comparison, not the server's.
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from keys.openbao import free_port

__all__ = ["MotoS3", "ACCESS_KEY", "SECRET_KEY"]

ACCESS_KEY = "ecert-test-access"
SECRET_KEY = "ecert-test-secret-never-logged"


class MotoS3:
    """``python -m moto.server`` on a free loopback port; :meth:`start` waits until it answers."""

    def __init__(self, directory: Path, port: int | None = None) -> None:
        self.directory = directory
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self) -> Any:
        """A plain boto3 client, for tests that inspect or damage the bucket behind ecert's back."""
        return boto3.client("s3", endpoint_url=self.url, region_name="us-east-1", aws_access_key_id=ACCESS_KEY,
                            aws_secret_access_key=SECRET_KEY,
                            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))

    def start(self, timeout: float = 30) -> MotoS3:
        self.directory.mkdir(parents=True, exist_ok=True)
        with open(self.directory / f"moto-{self.port}.log", "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                stdout=log, stderr=subprocess.STDOUT, cwd=self.directory,
            )
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.client().list_buckets()
                return self
            except Exception:  # noqa: BLE001  # not listening yet
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"moto server did not start on {self.url}") from None
                time.sleep(0.1)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def new_bucket(self, name: str | None = None) -> str:
        bucket = name or f"ecert-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=bucket)
        return bucket
