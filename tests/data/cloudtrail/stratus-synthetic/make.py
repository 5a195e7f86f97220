"""Writes synthetic CloudTrail records for the Stratus Red Team AWS techniques that no bundled
detonation log (samples/cloudtrail/stratus) covers: the key calls each technique's documentation names,
shaped as the AWS API reference and CloudTrail's record format say (request parameters,
errors, data events for S3 objects). Synthetic: no AWS account made them (NOTICE says so).

Run from this directory: python3 make.py  (rewrites the .jsonl files and labels.json)
"""
import json
import uuid

ACCOUNT = "111122223333"
OTHER = "444455556666"
REGION = "us-east-1"

def ts(sec):
    h, rem = divmod(10 * 3600 + sec, 3600)
    m, s = divmod(rem, 60)
    return f"2026-11-18T{h:02d}:{m:02d}:{s:02d}Z"

ATTACKER = {
    "type": "AssumedRole", "principalId": "AROAEXAMPLEATTACKER:stratus", "accountId": ACCOUNT,
    "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/stratus-red-team-role/stratus", "accessKeyId": "ASIAEXAMPLEATTACK01",
    "sessionContext": {"sessionIssuer": {"type": "Role", "principalId": "AROAEXAMPLEATTACKER", "arn": f"arn:aws:iam::{ACCOUNT}:role/stratus-red-team-role", "accountId": ACCOUNT, "userName": "stratus-red-team-role"},
                       "attributes": {"creationDate": "2026-11-18T09:59:00Z", "mfaAuthenticated": "false"}},
}
INSTANCE_ROLE = {
    "type": "AssumedRole", "principalId": "AROAEXAMPLEINSTANCE:i-0f1e2d3c4b5a69788", "accountId": ACCOUNT,
    "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/stratus-ec2-role/i-0f1e2d3c4b5a69788", "accessKeyId": "ASIAEXAMPLEINSTANCE",
    "sessionContext": {"sessionIssuer": {"type": "Role", "principalId": "AROAEXAMPLEINSTANCE", "arn": f"arn:aws:iam::{ACCOUNT}:role/stratus-ec2-role", "accountId": ACCOUNT, "userName": "stratus-ec2-role"},
                       "ec2RoleDelivery": "2.0", "attributes": {"creationDate": "2026-11-18T09:30:00Z", "mfaAuthenticated": "false"}},
}
UA = "stratus-red-team_6b0e4b44-8f3c-4a7e-9f6e-1d2c3b4a5f60"

def record(technique, n, sec, source, name, params=None, response=None, error=None, identity=ATTACKER, region=REGION, read_only=False, data=False, resources=None):
    seed = f"{technique}/{n}"
    r = {
        "eventVersion": "1.10", "userIdentity": identity, "eventTime": ts(sec), "eventSource": source, "eventName": name,
        "awsRegion": region, "sourceIPAddress": "203.0.113.42", "userAgent": UA, "requestParameters": params, "responseElements": response,
        "requestID": str(uuid.uuid5(uuid.NAMESPACE_URL, seed + "/request")), "eventID": str(uuid.uuid5(uuid.NAMESPACE_URL, seed + "/event")),
        "readOnly": read_only, "eventType": "AwsApiCall", "managementEvent": not data, "recipientAccountId": ACCOUNT,
        "eventCategory": "Data" if data else "Management",
        "tlsDetails": {"tlsVersion": "TLSv1.3", "cipherSuite": "TLS_AES_128_GCM_SHA256", "clientProvidedHostHeader": f"{source.split('.')[0]}.{region}.amazonaws.com"},
    }
    if error:
        r["errorCode"], r["errorMessage"] = error
    if resources:
        r["resources"] = resources
    return r

T = {}

def technique(tid, name, tactic, key):
    def wrap(f):
        T[tid] = (name, tactic, key, f(tid))
        return f
    return wrap

@technique("aws.credential-access.ec2-get-password-data", "Retrieve EC2 Password Data", "Credential Access", ["ec2:GetPasswordData"])
def _(t):
    return [record(t, i, i * 2, "ec2.amazonaws.com", "GetPasswordData", {"instanceId": f"i-0{i:016x}"}, None,
                   ("Client.UnauthorizedOperation", "You are not authorized to perform this operation."), read_only=True) for i in range(30)]

@technique("aws.defense-evasion.cloudtrail-lifecycle-rule", "CloudTrail Logs Impairment Through S3 Lifecycle Rule", "Defense Evasion", ["s3:PutBucketLifecycle"])
def _(t):
    bucket = "stratus-red-team-ctlifecycle-4f2a"
    return [record(t, 0, 0, "s3.amazonaws.com", "PutBucketLifecycle",
                   {"bucketName": bucket, "Host": f"{bucket}.s3.amazonaws.com", "lifecycle": "",
                    "LifecycleConfiguration": {"xmlns": "http://s3.amazonaws.com/doc/2006-03-01/", "Rule": {"ID": "nuke-cloudtrail-logs-after-1-day", "Status": "Enabled", "Filter": {"Prefix": ""}, "Expiration": {"Days": 1}}}},
                   resources=[{"type": "AWS::S3::Bucket", "ARN": f"arn:aws:s3:::{bucket}", "accountId": ACCOUNT}])]

@technique("aws.defense-evasion.organizations-leave", "Attempt to Leave the AWS Organization", "Defense Evasion", ["organizations:LeaveOrganization"])
def _(t):
    return [record(t, 0, 0, "organizations.amazonaws.com", "LeaveOrganization", None, None,
                   ("AccessDenied", "You don't have permissions to access this resource."))]

@technique("aws.defense-evasion.vpc-remove-flow-logs", "Remove VPC Flow Logs", "Defense Evasion", ["ec2:DeleteFlowLogs"])
def _(t):
    return [record(t, 0, 0, "ec2.amazonaws.com", "DeleteFlowLogs", {"DeleteFlowLogsRequest": {"FlowLogId": {"content": "fl-0a1b2c3d4e5f60718", "tag": 1}}},
                   {"DeleteFlowLogsResponse": {"xmlns": "http://ec2.amazonaws.com/doc/2016-11-15/", "requestId": "5f1e0c1a-0000-4000-8000-000000000001", "unsuccessful": ""}})]

@technique("aws.defense-evasion.bedrock-model-invocation-logging-delete", "Delete Bedrock Model Invocation Logging", "Defense Evasion", ["bedrock:DeleteModelInvocationLoggingConfiguration"])
def _(t):
    return [record(t, 0, 0, "bedrock.amazonaws.com", "DeleteModelInvocationLoggingConfiguration")]

@technique("aws.defense-evasion.bedrock-guardrail-delete", "Delete Bedrock Guardrail", "Defense Evasion", ["bedrock:DeleteGuardrail"])
def _(t):
    return [record(t, 0, 0, "bedrock.amazonaws.com", "DeleteGuardrail", {"guardrailIdentifier": "gr-stratus-0a1b2c"})]

@technique("aws.discovery.ec2-enumerate-from-instance", "Execute Discovery Commands on an EC2 Instance", "Discovery",
           ["sts:GetCallerIdentity", "s3:ListBuckets", "iam:GetAccountSummary", "iam:ListRoles", "iam:ListUsers", "iam:GetAccountAuthorizationDetails", "ec2:DescribeSnapshots", "cloudtrail:DescribeTrails", "guardduty:ListDetectors"])
def _(t):
    calls = [("sts", "GetCallerIdentity"), ("s3", "ListBuckets"), ("iam", "GetAccountSummary"), ("iam", "ListRoles"), ("iam", "ListUsers"),
             ("iam", "GetAccountAuthorizationDetails"), ("ec2", "DescribeSnapshots"), ("cloudtrail", "DescribeTrails"), ("guardduty", "ListDetectors")]
    return [record(t, i, i * 3, f"{s}.amazonaws.com", n, identity=INSTANCE_ROLE, read_only=True) for i, (s, n) in enumerate(calls)]

@technique("aws.discovery.ses-enumerate", "Enumerate SES", "Discovery", ["ses:GetAccountSendingEnabled", "ses:ListIdentities", "ses:GetSendQuota", "ses:GetIdentityVerificationAttributes"])
def _(t):
    calls = [("GetAccountSendingEnabled", None), ("GetSendQuota", None), ("ListIdentities", {"identityType": "Domain"}), ("ListIdentities", {"identityType": "EmailAddress"}),
             ("GetIdentityVerificationAttributes", {"identities": ["example.com"]})]
    return [record(t, i, i * 2, "ses.amazonaws.com", n, p, read_only=True) for i, (n, p) in enumerate(calls)]

@technique("aws.discovery.bedrock-enumerate-models-multiple-regions", "Enumerate Bedrock Models in Multiple Regions", "Discovery", ["bedrock:GetFoundationModelAvailability"])
def _(t):
    regions = ["us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-northeast-1", "ap-southeast-2"]
    return [record(t, i, i * 2, "bedrock.amazonaws.com", "GetFoundationModelAvailability", {"modelId": "anthropic.claude-3-5-sonnet-20240620-v1:0"}, region=r, read_only=True) for i, r in enumerate(regions)]

@technique("aws.execution.sagemaker-update-lifecycle-config", "SageMaker Notebook Lifecycle Configuration Injection", "Execution",
           ["sagemaker:CreateNotebookInstanceLifecycleConfig", "sagemaker:UpdateNotebookInstance"])
def _(t):
    nb, cfg = "stratus-notebook", "stratus-malicious-lifecycle"
    return [
        record(t, 0, 0, "sagemaker.amazonaws.com", "CreateNotebookInstanceLifecycleConfig", {"notebookInstanceLifecycleConfigName": cfg, "onStart": [{"content": "HIDDEN_DUE_TO_SECURITY_REASONS"}]},
               {"notebookInstanceLifecycleConfigArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:notebook-instance-lifecycle-config/{cfg}"}),
        record(t, 1, 5, "sagemaker.amazonaws.com", "StopNotebookInstance", {"notebookInstanceName": nb}),
        record(t, 2, 120, "sagemaker.amazonaws.com", "UpdateNotebookInstance", {"notebookInstanceName": nb, "lifecycleConfigName": cfg}),
        record(t, 3, 125, "sagemaker.amazonaws.com", "StartNotebookInstance", {"notebookInstanceName": nb}),
    ]

@technique("aws.execution.ssm-start-session", "Usage of ssm:StartSession on multiple instances", "Execution", ["ssm:StartSession"])
def _(t):
    return [record(t, i, i * 4, "ssm.amazonaws.com", "StartSession", {"target": f"i-0a{i:015x}"},
                   {"sessionId": f"stratus-{i:04x}", "tokenValue": "Value hidden due to security reasons.", "streamUrl": f"wss://ssmmessages.{REGION}.amazonaws.com/v1/data-channel/stratus-{i:04x}"}) for i in range(3)]

@technique("aws.exfiltration.ec2-share-ebs-snapshot", "Exfiltrate EBS Snapshot by Sharing It", "Exfiltration", ["ec2:ModifySnapshotAttribute"])
def _(t):
    return [record(t, 0, 0, "ec2.amazonaws.com", "ModifySnapshotAttribute",
                   {"snapshotId": "snap-0b1c2d3e4f5a60718", "attributeType": "CREATE_VOLUME_PERMISSION", "createVolumePermission": {"add": {"items": [{"userId": OTHER}]}}},
                   {"_return": True})]

@technique("aws.exfiltration.rds-share-snapshot", "Exfiltrate RDS Snapshot by Sharing", "Exfiltration", ["rds:ModifyDBSnapshotAttribute"])
def _(t):
    return [record(t, 0, 0, "rds.amazonaws.com", "ModifyDBSnapshotAttribute",
                   {"dBSnapshotIdentifier": "stratus-rds-snapshot", "attributeName": "restore", "valuesToAdd": [OTHER]},
                   {"dBSnapshotIdentifier": "stratus-rds-snapshot", "dBSnapshotAttributes": [{"attributeName": "restore", "attributeValues": [OTHER]}]})]

@technique("aws.exfiltration.s3-backdoor-bucket-policy", "Backdoor an S3 Bucket via its Bucket Policy", "Exfiltration", ["s3:PutBucketPolicy"])
def _(t):
    bucket = "stratus-sensitive-data-7c1d"
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{OTHER}:root"}, "Action": ["s3:GetObject", "s3:GetBucketLocation", "s3:ListBucket"],
                                                      "Resource": [f"arn:aws:s3:::{bucket}/*", f"arn:aws:s3:::{bucket}"]}]}
    return [record(t, 0, 0, "s3.amazonaws.com", "PutBucketPolicy", {"bucketName": bucket, "Host": f"{bucket}.s3.amazonaws.com", "bucketPolicy": policy, "policy": ""},
                   resources=[{"type": "AWS::S3::Bucket", "ARN": f"arn:aws:s3:::{bucket}", "accountId": ACCOUNT}])]

def objects(t, start, bucket, name, keys, sec0=0, data_params=None):
    out = []
    for i, k in enumerate(keys):
        p = {"bucketName": bucket, "Host": f"{bucket}.s3.{REGION}.amazonaws.com", "key": k}
        out.append(record(t, start + i, sec0 + i, "s3.amazonaws.com", name, p, None, read_only=name.startswith("Get"), data=True,
                          resources=[{"type": "AWS::S3::Object", "ARN": f"arn:aws:s3:::{bucket}/{k}"}, {"accountId": ACCOUNT, "type": "AWS::S3::Bucket", "ARN": f"arn:aws:s3:::{bucket}"}]))
    return out

KEYS = [f"finance/2026/report-{i:03d}.csv" for i in range(40)]

@technique("aws.impact.s3-ransomware-batch-deletion", "S3 Ransomware through batch file deletion", "Impact", ["s3:DeleteObjects"])
def _(t):
    bucket = "stratus-ransomware-batch-5e6f"
    out = [record(t, 0, 0, "s3.amazonaws.com", "ListObjectVersions", {"bucketName": bucket, "versions": ""}, read_only=True, data=True,
                  resources=[{"accountId": ACCOUNT, "type": "AWS::S3::Bucket", "ARN": f"arn:aws:s3:::{bucket}"}])]
    out.append(record(t, 1, 2, "s3.amazonaws.com", "DeleteObjects", {"bucketName": bucket, "Host": f"{bucket}.s3.{REGION}.amazonaws.com", "delete": ""}, None, data=True,
                      resources=[{"type": "AWS::S3::Object", "ARN": f"arn:aws:s3:::{bucket}/{k}"} for k in KEYS] + [{"accountId": ACCOUNT, "type": "AWS::S3::Bucket", "ARN": f"arn:aws:s3:::{bucket}"}]))
    out += objects(t, 2, bucket, "PutObject", ["FILES-DELETED.txt"], sec0=5)
    return out

@technique("aws.impact.s3-ransomware-individual-deletion", "S3 Ransomware through individual file deletion", "Impact", ["s3:DeleteObject"])
def _(t):
    bucket = "stratus-ransomware-single-9a0b"
    return objects(t, 0, bucket, "DeleteObject", KEYS) + objects(t, 100, bucket, "PutObject", ["FILES-DELETED.txt"], sec0=60)

@technique("aws.impact.s3-ransomware-client-side-encryption", "S3 Ransomware through client-side encryption", "Impact", ["s3:GetObject", "s3:PutObject"])
def _(t):
    bucket = "stratus-ransomware-encrypt-3c4d"
    out = []
    for i, k in enumerate(KEYS[:25]):
        out += objects(t, 2 * i, bucket, "GetObject", [k], sec0=2 * i)
        out += objects(t, 2 * i + 1, bucket, "PutObject", [k], sec0=2 * i + 1)
    return out + objects(t, 200, bucket, "PutObject", ["FILES-ENCRYPTED.txt"], sec0=80)

@technique("aws.lateral-movement.ec2-serial-console-send-ssh-public-key", "Usage of EC2 Serial Console to push SSH public key", "Lateral Movement",
           ["ec2-instance-connect:SendSerialConsoleSSHPublicKey"])
def _(t):
    return [
        record(t, 0, 0, "ec2.amazonaws.com", "EnableSerialConsoleAccess", {"EnableSerialConsoleAccessRequest": ""}, {"EnableSerialConsoleAccessResponse": {"serialConsoleAccessEnabled": True}}),
        record(t, 1, 10, "ec2-instance-connect.amazonaws.com", "SendSerialConsoleSSHPublicKey", {"instanceId": "i-0c1d2e3f4a5b60718", "serialPort": 0, "sSHPublicKey": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIStratus stratus"},
               {"requestId": "0c1d2e3f-0000-4000-8000-000000000002", "success": True}),
    ]

@technique("aws.persistence.iam-create-backdoor-role", "Create a backdoored IAM Role", "Persistence", ["iam:CreateRole", "iam:AttachRolePolicy"])
def _(t):
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{OTHER}:root"}, "Action": "sts:AssumeRole"}]}
    return [
        record(t, 0, 0, "iam.amazonaws.com", "CreateRole", {"roleName": "stratus-red-team-malicious-iam-role", "assumeRolePolicyDocument": json.dumps(trust)},
               {"role": {"path": "/", "roleName": "stratus-red-team-malicious-iam-role", "roleId": "AROAEXAMPLEBACKDOOR0", "arn": f"arn:aws:iam::{ACCOUNT}:role/stratus-red-team-malicious-iam-role",
                         "createDate": "Nov 18, 2026 10:00:00 AM", "assumeRolePolicyDocument": "%7B%7D"}}, region="us-east-1"),
        record(t, 1, 2, "iam.amazonaws.com", "AttachRolePolicy", {"roleName": "stratus-red-team-malicious-iam-role", "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"}),
    ]

@technique("aws.persistence.lambda-layer-extension", "Add a Malicious Lambda Extension", "Persistence", ["lambda:UpdateFunctionConfiguration20150331v2"])
def _(t):
    layer = f"arn:aws:lambda:{REGION}:{OTHER}:layer:stratus-extension:1"
    return [record(t, 0, 0, "lambda.amazonaws.com", "UpdateFunctionConfiguration20150331v2", {"functionName": "stratus-target-function", "layers": [layer]},
                   {"functionName": "stratus-target-function", "functionArn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:stratus-target-function", "layers": [{"arn": layer, "codeSize": 1024}]})]

@technique("aws.persistence.rolesanywhere-create-trust-anchor", "Create an IAM Roles Anywhere trust anchor", "Persistence", ["rolesanywhere:CreateTrustAnchor", "rolesanywhere:CreateProfile"])
def _(t):
    return [
        record(t, 0, 0, "rolesanywhere.amazonaws.com", "CreateTrustAnchor", {"name": "stratus-trust-anchor", "enabled": True, "source": {"sourceType": "CERTIFICATE_BUNDLE", "sourceData": {"x509CertificateData": "-----BEGIN CERTIFICATE-----HIDDEN"}}},
               {"trustAnchor": {"trustAnchorArn": f"arn:aws:rolesanywhere:{REGION}:{ACCOUNT}:trust-anchor/0a1b2c3d", "name": "stratus-trust-anchor", "enabled": True}}),
        record(t, 1, 3, "rolesanywhere.amazonaws.com", "CreateProfile", {"name": "stratus-profile", "roleArns": [f"arn:aws:iam::{ACCOUNT}:role/stratus-rolesanywhere-role"], "enabled": True},
               {"profile": {"profileArn": f"arn:aws:rolesanywhere:{REGION}:{ACCOUNT}:profile/4e5f6a7b", "name": "stratus-profile"}}),
    ]

if __name__ == "__main__":
    labels = []
    for tid, (name, tactic, key, records) in sorted(T.items()):
        with open(f"{tid}.jsonl", "w") as f:
            for r in records:
                f.write(json.dumps(r, separators=(",", ":")) + "\n")
        labels.append({"technique_id": tid, "name": name, "mitre_attack_tactics": [tactic], "key_events": key, "synthetic": True})
    with open("labels.json", "w") as f:
        json.dump(labels, f, indent=1)
        f.write("\n")
    print(len(labels), "techniques")
