"""An S3-compatible server for tests: moto's server, run as its own process on a free port.

Fixtures (a pytest plugin of the top-level conftest): `s3`, the server, started once per session
when a test asks for it; `s3_bucket`, a fresh bucket with s3fs's credentials in the environment.

It checks credentials as S3 does: an IAM user with a policy that allows S3 is made while the
server still lets every request in, then the server is told to authenticate every request, so
a wrong key or secret is refused (403) as AWS refuses it. The real s3fs client talks to it over
HTTP, its endpoint given as `VTP_EXTRACTS_ENDPOINT_URL` would give it.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from uuid import uuid4

import httpx
import pytest

REGION = "us-east-1"
START_TIMEOUT_S = 60
S3_POLICY = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    access_key_id: str
    secret_access_key: str

    def credentials_env(self) -> dict[str, str]:
        """The variables s3fs (botocore) reads, and nothing from this machine's AWS config."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key_id, "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
            "AWS_DEFAULT_REGION": REGION, "AWS_CONFIG_FILE": "/nonexistent/aws-config",
            "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials", "AWS_EC2_METADATA_DISABLED": "true",
        }

    def create_bucket(self, name: str) -> None:
        self._client("s3").create_bucket(Bucket=name)

    def keys(self, bucket: str) -> list[str]:
        """Every object key in the bucket, sorted."""
        listing = self._client("s3").list_objects_v2(Bucket=bucket)
        return sorted(item["Key"] for item in listing.get("Contents", []))

    def _client(self, service: str):  # boto3's clients are typed by stubs this project does not install
        import boto3  # moto's dependency; imported when a test uses the server

        return boto3.client(service, endpoint_url=self.endpoint, region_name=REGION,
                            aws_access_key_id=self.access_key_id, aws_secret_access_key=self.secret_access_key)


@contextmanager
def serving_s3() -> Iterator[S3Server]:
    """moto's server on 127.0.0.1, authenticating every request, stopped at the end."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    endpoint = f"http://127.0.0.1:{port}"
    process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_until_serving(endpoint, process)
        iam = S3Server(endpoint, "bootstrap", "bootstrap")._client("iam")  # before authentication starts
        iam.create_user(UserName="vtp")
        iam.put_user_policy(UserName="vtp", PolicyName="s3", PolicyDocument=json.dumps(S3_POLICY))
        key = iam.create_access_key(UserName="vtp")["AccessKey"]
        httpx.post(f"{endpoint}/moto-api/reset-auth", content=b"0").raise_for_status()  # authenticate from now on
        yield S3Server(endpoint, key["AccessKeyId"], key["SecretAccessKey"])
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_serving(endpoint: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"moto's server exited with {process.returncode} before serving")
        try:
            httpx.get(f"{endpoint}/moto-api/data.json", timeout=2)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError(f"moto's server did not answer at {endpoint} within {START_TIMEOUT_S} s")


@pytest.fixture(scope="session")
def s3() -> Iterator[S3Server]:
    with serving_s3() as server:
        yield server


@pytest.fixture
def s3_bucket(s3: S3Server, monkeypatch: pytest.MonkeyPatch) -> str:
    """A new, empty bucket; the environment holds the credentials that may use it."""
    for name, value in s3.credentials_env().items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    bucket = f"vtp-{uuid4().hex[:12]}"
    s3.create_bucket(bucket)
    return bucket
