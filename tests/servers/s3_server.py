"""A real S3-compatible server for the remote-store tests: moto's server
mode (from PyPI, installed by scripts/setup.sh) on a free loopback port,
with request signatures checked against IAM (moto checks none unless told
to). It creates a user with an access key that may do anything, and a
bucket, then prints one JSON line (port, key id, secret, bucket) and
serves until its stdin closes, so it dies with the test that started it.

Usage: s3_server.py BUCKET
"""
import json
import os
import sys

# Auth is enforced after this many requests: those that create the user,
# its key and policy, and the bucket.
os.environ["INITIAL_NO_AUTH_ACTION_COUNT"] = "4"

import boto3  # noqa: E402  (installed with moto)
from moto.server import ThreadedMotoServer  # noqa: E402


def main():
    bucket = sys.argv[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    port = server.get_host_and_port()[1]
    endpoint = f"http://127.0.0.1:{port}"
    boot = dict(endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="boot", aws_secret_access_key="boot")
    iam = boto3.client("iam", **boot)
    iam.create_user(UserName="ci")
    iam.put_user_policy(
        UserName="ci",
        PolicyName="all",
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}),
    )
    key = iam.create_access_key(UserName="ci")["AccessKey"]
    s3 = boto3.client("s3", **boot)
    s3.create_bucket(Bucket=bucket)
    print(json.dumps({"port": port, "key": key["AccessKeyId"], "secret": key["SecretAccessKey"], "bucket": bucket}), flush=True)
    sys.stdin.read()
    server.stop()


if __name__ == "__main__":
    main()
