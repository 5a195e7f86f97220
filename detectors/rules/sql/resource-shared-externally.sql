-- id: ocelot.resource-shared-externally
-- title: Image or snapshot shared with another account or made public
-- description: An AMI's launch permission or an EBS/RDS snapshot's restore permission granted to
-- description: another account or to all: a way to carry data out of the account.
-- severity: high
-- attack: T1537
-- tactics: exfiltration
-- table: api_activity
-- group_by: principal
-- filter: api.response.error IS NULL AND api.operation IN ('ModifyImageAttribute', 'ModifySnapshotAttribute', 'ModifyDBSnapshotAttribute', 'ModifyDBClusterSnapshotAttribute') AND (
-- filter: (api.operation = 'ModifyImageAttribute' AND (json_get(coalesce(api.request.data, json_get(unmapped, 'requestParameters')), 'launchPermission.add.items.userId') IS NOT NULL OR json_get(coalesce(api.request.data, json_get(unmapped, 'requestParameters')), 'launchPermission.add.items.group') LIKE '%"all"%'))
-- filter: OR (api.operation = 'ModifySnapshotAttribute' AND (json_get(coalesce(api.request.data, json_get(unmapped, 'requestParameters')), 'createVolumePermission.add.items.userId') IS NOT NULL OR json_get(coalesce(api.request.data, json_get(unmapped, 'requestParameters')), 'createVolumePermission.add.items.group') LIKE '%"all"%'))
-- filter: OR (api.operation IN ('ModifyDBSnapshotAttribute', 'ModifyDBClusterSnapshotAttribute') AND json_get(coalesce(api.request.data, json_get(unmapped, 'requestParameters')), 'valuesToAdd') NOT IN ('[]')))
-- fires: ../../samples/cloudtrail/stratus/aws.exfiltration.ec2-share-ami.jsonl
-- quiet: ../../samples/cloudtrail/stratus/aws.execution.ec2-user-data.jsonl

SELECT metadata.uid AS uid, actor.user.uid AS principal, actor.app_name AS agent,
       api.operation AS operation, api.request.data AS request
FROM api_activity
