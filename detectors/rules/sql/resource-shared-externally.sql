-- id: ocelot.resource-shared-externally
-- title: Image, snapshot or bucket shared with another account or made public, or an outside trust anchor
-- description: An AMI's launch permission or an EBS/RDS snapshot's restore permission granted to
-- description: another account or to all, or a bucket policy that grants another account or
-- description: anyone: ways to carry data out of the account. Also an IAM Roles Anywhere trust
-- description: anchor created: certificates of an outside authority then obtain role credentials.
-- severity: high
-- attack: T1537
-- tactics: exfiltration
-- table: api_activity
-- group_by: principal
-- filter: api.response.error IS NULL AND api.operation IN ('ModifyImageAttribute', 'ModifySnapshotAttribute', 'ModifyDBSnapshotAttribute', 'ModifyDBClusterSnapshotAttribute', 'PutBucketPolicy', 'CreateTrustAnchor') AND (
-- filter: (api.operation = 'ModifyImageAttribute' AND (json_get(coalesce(api.request.data, json_get(unmapped, 'requestParameters')), 'launchPermission.add.items.userId') IS NOT NULL OR json_get(coalesce(api.request.data, json_get(unmapped, 'requestParameters')), 'launchPermission.add.items.group') LIKE '%"all"%'))
-- filter: OR (api.operation = 'ModifySnapshotAttribute' AND (json_get(coalesce(api.request.data, json_get(unmapped, 'requestParameters')), 'createVolumePermission.add.items.userId') IS NOT NULL OR json_get(coalesce(api.request.data, json_get(unmapped, 'requestParameters')), 'createVolumePermission.add.items.group') LIKE '%"all"%'))
-- filter: OR (api.operation IN ('ModifyDBSnapshotAttribute', 'ModifyDBClusterSnapshotAttribute') AND json_get(coalesce(api.request.data, json_get(unmapped, 'requestParameters')), 'valuesToAdd') NOT IN ('[]'))
-- filter: OR (api.service.name = 's3.amazonaws.com' AND api.operation = 'PutBucketPolicy' AND (regexp_like(json_get(coalesce(api.request.data, json_get(unmapped, 'requestParameters')), 'bucketPolicy'), '"(Principal|AWS)"\s*:\s*(\[\s*)?"\*"')
-- filter:     OR regexp_like(replace(coalesce(json_get(coalesce(api.request.data, json_get(unmapped, 'requestParameters')), 'bucketPolicy'), ''), concat('arn:aws:iam::', coalesce(cloud.account.uid, ''), ':'), ''), 'arn:aws:iam::[0-9]{12}:')))
-- filter: OR (api.service.name = 'rolesanywhere.amazonaws.com' AND api.operation = 'CreateTrustAnchor'))
-- fires: ../../samples/cloudtrail/stratus/aws.exfiltration.ec2-share-ami.jsonl
-- fires: ../../tests/data/cloudtrail/stratus-synthetic/aws.exfiltration.ec2-share-ebs-snapshot.jsonl
-- fires: ../../tests/data/cloudtrail/stratus-synthetic/aws.exfiltration.rds-share-snapshot.jsonl
-- fires: ../../tests/data/cloudtrail/stratus-synthetic/aws.exfiltration.s3-backdoor-bucket-policy.jsonl
-- fires: ../../tests/data/cloudtrail/stratus-synthetic/aws.persistence.rolesanywhere-create-trust-anchor.jsonl
-- quiet: ../../samples/cloudtrail/stratus/aws.execution.ec2-user-data.jsonl

SELECT metadata.uid AS uid, actor.user.uid AS principal, actor.app_name AS agent,
       api.operation AS operation, api.request.data AS request
FROM api_activity
