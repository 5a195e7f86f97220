-- id: ocelot.agent-blast-radius
-- title: AI agent blast radius: many resources changed in minutes
-- description: One AI agent (recognized on the CloudTrail record, or linked through its tool
-- description: calls) mutates more than 10 distinct resources, or makes 10 or more destructive
-- description: calls, within 5 minutes. Thresholds are in the query; copy the rule to tune them.
-- severity: high
-- attack: T1485, T1490
-- tactics: impact
-- tables: api_activity, account_change
-- window: 5m
-- lateness: 2m
-- group_by: agent, principal
-- filter: metadata.product.name = 'CloudTrail' AND is_mutation(api.operation)
-- fires: ../../samples/agent/cleanup
-- quiet: ../../samples/agent/session
-- quiet: ../../samples/agent/benign

WITH ct AS (
  SELECT metadata.uid AS uid, time, actor.user.uid AS principal, actor.app_name AS app, api.operation AS operation,
         coalesce(resources[1]['uid'], resources[1]['name'], api.request.data) AS resource
  FROM api_activity
  UNION ALL
  SELECT metadata.uid, time, actor.user.uid, actor.app_name, api.operation, coalesce("user".uid, "user".name, policy.uid, api.request.data)
  FROM account_change),
linked AS (
  SELECT ct.*, coalesce(l.agent, ct.app) AS agent FROM ct LEFT JOIN agent_links l ON l.uid = ct.uid
  WHERE l.uid IS NOT NULL OR ct.app IS NOT NULL)
SELECT agent, principal, array_agg(uid ORDER BY time) AS uids, count(DISTINCT resource) AS resources_changed,
       sum(CASE WHEN is_destructive(operation) THEN 1 ELSE 0 END) AS destructive_calls
FROM linked
GROUP BY agent, principal
HAVING count(DISTINCT resource) > 10 OR sum(CASE WHEN is_destructive(operation) THEN 1 ELSE 0 END) >= 10
