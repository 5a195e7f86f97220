-- id: ocelot.credential-bulk-read
-- title: Secrets, SecureString parameters or EC2 Windows passwords read in bulk
-- description: One principal reads five or more distinct Secrets Manager secrets, any secrets in a
-- description: batch call, decrypts five or more SSM parameters in one call, or decrypts SSM
-- description: parameters in three or more calls within ten minutes:
-- description: how stolen credentials are harvested (and how an over-eager agent leaks them).
-- description: Also five or more EC2 GetPasswordData calls (allowed or refused): RDP passwords sought
-- description: across many Windows instances.
-- severity: high
-- attack: T1555.006, T1552
-- tactics: credential-access
-- table: api_activity
-- window: 10m every 5m
-- lateness: 2m
-- group_by: principal
-- filter: api.operation IN ('GetSecretValue', 'BatchGetSecretValue', 'GetParameter', 'GetParameters', 'GetParametersByPath', 'GetPasswordData') AND (
-- filter: (api.service.name = 'ec2.amazonaws.com' AND api.operation = 'GetPasswordData') OR
-- filter: (api.service.name = 'secretsmanager.amazonaws.com' AND api.operation IN ('GetSecretValue', 'BatchGetSecretValue'))
-- filter: OR (api.service.name = 'ssm.amazonaws.com' AND api.operation IN ('GetParameter', 'GetParameters', 'GetParametersByPath') AND json_get(coalesce(api.request.data, json_get(unmapped, 'requestParameters')), 'withDecryption') = 'true'))
-- fires: ../../samples/cloudtrail/stratus/aws.credential-access.secretsmanager-retrieve-secrets.jsonl
-- fires: ../../samples/cloudtrail/stratus/aws.credential-access.secretsmanager-batch-retrieve-secrets.jsonl
-- fires: ../../samples/cloudtrail/stratus/aws.credential-access.ssm-retrieve-securestring-parameters.jsonl
-- fires: ../../tests/data/cloudtrail/stratus-synthetic/aws.credential-access.ec2-get-password-data.jsonl
-- quiet: ../../samples/cloudtrail/stratus/aws.credential-access.ec2-steal-instance-credentials.jsonl

SELECT actor.user.uid AS principal, first_value(actor.app_name) AS agent,
       array_agg(metadata.uid ORDER BY time) AS uids, count(*) AS calls,
       count(DISTINCT json_get(coalesce(api.request.data, json_get(unmapped, 'requestParameters')), 'secretId')) AS secrets
FROM api_activity
GROUP BY actor.user.uid
HAVING count(DISTINCT json_get(coalesce(api.request.data, json_get(unmapped, 'requestParameters')), 'secretId')) >= 5
    OR sum(CASE WHEN api.operation = 'BatchGetSecretValue' THEN 1 ELSE 0 END) >= 1
    OR sum(CASE WHEN api.service.name = 'ssm.amazonaws.com' THEN 1 ELSE 0 END) >= 3
    OR sum(CASE WHEN api.operation = 'GetPasswordData' THEN 1 ELSE 0 END) >= 5
    OR max(json_len(json_get(coalesce(api.request.data, json_get(unmapped, 'requestParameters')), 'names'))) >= 5
