-- agent_mutations: every mutating cloud API call (CloudTrail create, update, delete) that an AI
-- agent made, with the agent tool call that made it and the human decision on that call.
--
-- An agent made a change when either
--   * a tool call of an agent session (same AWS service and operation) came at most a minute
--     before it (5 s after, for clock skew); the latest such call wins, as the detection
--     engine's `agent_links` decide (docs/detection.md); or
--   * the agent registry recognized the caller on the CloudTrail record itself (actor.app_name,
--     docs/agents.md), when no tool call was logged.
-- approval: the coding agent's decision on the tool call (accept, reject), 'none seen' when the
-- call has no decision event, 'no tool call' when only the registry names the agent.
WITH calls AS (
  SELECT actor.app_name AS agent, actor.session.uid AS session, api.request.uid AS tool_call, api.group.name AS tool,
         api.service.name AS service, api.operation AS operation, time FROM api_activity
  WHERE array_has(metadata.profiles, 'ai_operation') AND activity_name <> 'Tool Decision' AND api.group.name IS NOT NULL AND api.service.name LIKE '%.amazonaws.com'),
decisions AS (
  SELECT api.request.uid AS tool_call, actor.authorizations[1]['decision'] AS decision, actor.authorizations[1]['policy']['name'] AS decided_by FROM api_activity
  WHERE activity_name = 'Tool Decision'),
changes AS (
  SELECT metadata.uid AS event_uid, time, time_dt, api.service.name AS service, api.operation AS operation, actor.user.name AS principal,
         actor.app_name AS registry_agent, status, api.response.error AS error, region, accountId, eventDay
  FROM api_activity WHERE metadata.product.name = 'CloudTrail' AND is_mutation(api.operation)
  UNION ALL
  SELECT metadata.uid, time, time_dt, api.service.name, api.operation, actor.user.name, actor.app_name, status, api.response.error, region, accountId, eventDay
  FROM account_change WHERE is_mutation(api.operation)),
linked AS (
  SELECT c.*, k.agent, k.session, k.tool, k.tool_call,
         row_number() OVER (PARTITION BY c.event_uid, c.time, c.operation, c.principal ORDER BY k.time DESC NULLS LAST) AS n
  FROM changes c LEFT JOIN calls k
    ON lower(c.service) = lower(k.service) AND lower(c.operation) = lower(k.operation) AND c.time BETWEEN k.time - 5000 AND k.time + 60000)
SELECT l.time_dt, l.operation, l.service, l.principal, coalesce(l.agent, l.registry_agent) AS agent,
       l.session, l.tool, l.tool_call,
       CASE WHEN l.tool_call IS NULL THEN 'no tool call' ELSE coalesce(d.decision, 'none seen') END AS approval,
       d.decided_by, l.status, l.error, l.event_uid, l.time, l.region, l.accountId, l.eventDay
FROM linked l LEFT JOIN decisions d ON d.tool_call = l.tool_call
WHERE l.n = 1 AND (l.agent IS NOT NULL OR l.registry_agent IS NOT NULL)
