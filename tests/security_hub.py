"""Test helper for tests/forward_security_hub.rs: moto's Security Hub with IAM authentication on.

  setup URL          switch on moto's IAM auth, create a user allowed everything, print its keys
  get URL ID SECRET  print every finding GetFindings returns, as JSON (boto3, signed with the keys)
"""
import json
import sys
import urllib.request

import boto3

cmd, url = sys.argv[1], sys.argv[2]
if cmd == "setup":
    # The next 3 calls (the IAM ones below) go without authentication; every later one must be
    # signed with a key that exists and be allowed by its policy.
    # (A JSON content type: with urllib's default, form data, the server reads an empty body.)
    req = urllib.request.Request(f"{url}/moto-api/reset-auth", data=b"3", method="POST", headers={"Content-Type": "application/json"})
    urllib.request.urlopen(req)
    iam = boto3.client("iam", endpoint_url=url, region_name="us-east-1", aws_access_key_id="setup", aws_secret_access_key="setup")
    iam.create_user(UserName="ocelot")
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "securityhub:*", "Resource": "*"}]}
    iam.put_user_policy(UserName="ocelot", PolicyName="import-findings", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName="ocelot")["AccessKey"]
    print(json.dumps({"id": key["AccessKeyId"], "secret": key["SecretAccessKey"]}))
elif cmd == "get":
    hub = boto3.client("securityhub", endpoint_url=url, region_name="us-east-1", aws_access_key_id=sys.argv[3], aws_secret_access_key=sys.argv[4])
    found, token = [], None
    while True:
        page = hub.get_findings(MaxResults=100, **({"NextToken": token} if token else {}))
        found += page["Findings"]
        token = page.get("NextToken")
        if not token:
            break
    print(json.dumps(found))
else:
    sys.exit(f"unknown command {cmd}")
