-- id: ocelot.agent-destructive-unapproved
-- title: AI agent made a destructive change that no human approved
-- description: A delete, terminate, detach, stop or disable in CloudTrail made through an AI
-- description: agent's tool call that was auto-approved by configuration, had no decision at all,
-- description: or was even rejected by the human yet executed. The finding names the agent, the
-- description: conversation, the tool calls and the approval state (agent_links).
-- severity: high
-- attack: T1485, T1489
-- tactics: impact
-- tables: api_activity, account_change
-- window: 5m
-- lateness: 2m
-- group_by: agent, conversation, approval, principal
-- filter: metadata.product.name = 'CloudTrail' AND is_destructive(api.operation)
-- fires: ../../samples/agent/session
-- fires: ../../samples/agent/cleanup
-- quiet: ../../samples/agent/benign

WITH ct AS (
  SELECT metadata.uid AS uid, time, actor.user.uid AS principal, actor.app_name AS app, api.operation AS operation FROM api_activity
  UNION ALL
  SELECT metadata.uid, time, actor.user.uid, actor.app_name, api.operation FROM account_change),
linked AS (
  SELECT ct.*, coalesce(l.agent, ct.app) AS agent, coalesce(l.conversation, '') AS conversation, l.tool_call,
         coalesce(l.approval, 'no_decision') AS approval, l.decided_by, l.human
  FROM ct LEFT JOIN agent_links l ON l.uid = ct.uid
  WHERE l.uid IS NOT NULL OR ct.app IS NOT NULL)
SELECT agent, conversation, approval, principal, array_agg(uid ORDER BY time) AS uids,
       array_to_string(array_agg(DISTINCT operation), ', ') AS operations,
       array_to_string(array_agg(DISTINCT tool_call), ', ') AS tool_calls,
       max(decided_by) AS decided_by, max(human) AS human
FROM linked
WHERE approval <> 'human_approved'
GROUP BY agent, conversation, approval, principal
