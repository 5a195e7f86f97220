-- id: ocelot.agent-data-destruction
-- title: AI agent destroyed data: buckets, databases without final snapshot, backups, tables
-- description: An AI agent deletes a bucket or objects in bulk, a database instance or cluster
-- description: without a final snapshot, snapshots, backups or recovery points, or tables.
-- severity: critical
-- attack: T1485, T1490
-- tactics: impact
-- tables: api_activity
-- window: 5m
-- lateness: 2m
-- group_by: agent, conversation, principal
-- filter: metadata.product.name = 'CloudTrail' AND (api.operation LIKE 'Delete%' OR api.operation LIKE 'Drop%') AND (
-- filter: api.operation IN ('DeleteBucket', 'DeleteObjects', 'DeleteSnapshot', 'DeleteDBSnapshot', 'DeleteDBClusterSnapshot', 'DeleteRecoveryPoint',
-- filter: 'DeleteBackupVault', 'DeleteBackupPlan', 'DeleteTable', 'DeleteFileSystem', 'DeleteVolume')
-- filter: OR api.operation IN ('DeleteDBInstance', 'DeleteDBCluster') AND json_get(coalesce(api.request.data, json_get(unmapped, 'requestParameters')), 'skipFinalSnapshot') = 'true')
-- fires: ../../samples/agent/cleanup
-- fires: ../../samples/agent/session
-- quiet: ../../samples/agent/benign

WITH linked AS (
  SELECT a.metadata.uid AS uid, a.time, a.actor.user.uid AS principal, coalesce(l.agent, a.actor.app_name) AS agent,
         coalesce(l.conversation, '') AS conversation, coalesce(l.approval, 'no_decision') AS approval, l.human, a.api.operation AS operation,
         coalesce(a.resources[1]['uid'], a.resources[1]['name']) AS resource
  FROM api_activity a LEFT JOIN agent_links l ON l.uid = a.metadata.uid
  WHERE l.uid IS NOT NULL OR a.actor.app_name IS NOT NULL)
SELECT agent, conversation, principal, array_agg(uid ORDER BY time) AS uids,
       array_to_string(array_agg(DISTINCT operation), ', ') AS operations,
       array_to_string(array_agg(DISTINCT resource), ', ') AS resources_destroyed,
       array_to_string(array_agg(DISTINCT approval), ', ') AS approvals, max(human) AS human
FROM linked
GROUP BY agent, conversation, principal
