#!/usr/bin/env python3
"""s3util - boto3 one-liners the S3 tests use to check a store from the outside.

    s3util.py mkbucket BUCKET
    s3util.py put BUCKET KEY FILE
    s3util.py sha256 BUCKET KEY        -> "SIZE SHA256HEX", or "missing"
    s3util.py uploads BUCKET           -> number of open multipart uploads
    s3util.py mkuser NAME              -> an IAM user with an access key and no policy:
                                          "AKID SECRET" (its requests get AccessDenied)

The endpoint is $S3UTIL_ENDPOINT (else $AWS_ENDPOINT_URL), the keys are
$AWS_ACCESS_KEY_ID / $AWS_SECRET_ACCESS_KEY, the region us-east-1.
"""
import hashlib
import os
import sys

import boto3
import botocore.exceptions


def client(service="s3"):
    return boto3.client(service, region_name="us-east-1",
                        endpoint_url=os.environ.get("S3UTIL_ENDPOINT")
                        or os.environ["AWS_ENDPOINT_URL"])


def main(argv):
    cmd, args = argv[1], argv[2:]
    s3 = client()
    if cmd == "mkbucket":
        s3.create_bucket(Bucket=args[0])
    elif cmd == "put":
        with open(args[2], "rb") as f:
            s3.put_object(Bucket=args[0], Key=args[1], Body=f.read())
    elif cmd == "sha256":
        try:
            body = s3.get_object(Bucket=args[0], Key=args[1])["Body"].read()
        except botocore.exceptions.ClientError as e:
            if e.response["Error"]["Code"] in ("NoSuchKey", "404"):
                print("missing")
                return
            raise
        print(len(body), hashlib.sha256(body).hexdigest())
    elif cmd == "uploads":
        print(len(s3.list_multipart_uploads(Bucket=args[0]).get("Uploads", [])))
    elif cmd == "mkuser":
        iam = client("iam")
        iam.create_user(UserName=args[0])
        k = iam.create_access_key(UserName=args[0])["AccessKey"]
        print(k["AccessKeyId"], k["SecretAccessKey"])
    else:
        sys.exit(f"s3util: unknown command {cmd}")


if __name__ == "__main__":
    main(sys.argv)
