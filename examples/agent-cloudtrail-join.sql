-- Each CloudTrail event with the AI-agent tool call that made it (same AWS service and
-- operation, the latest call at most a minute before), and the human decision on that call.
-- The detection engine makes the same link as the table `agent_links` (docs/detection.md).
-- Used by `ocelot demo`, the README and tests/agent.rs.
WITH calls AS (
  SELECT actor.app_name AS agent, actor.session.uid AS session, api.request.uid AS tool_call, api.group.name AS tool,
         api.service.name AS service, api.operation AS operation, time FROM api_activity
  WHERE array_has(metadata.profiles, 'ai_operation') AND activity_name <> 'Tool Decision' AND api.group.name IS NOT NULL AND api.service.name LIKE '%.amazonaws.com'),
decisions AS (
  SELECT api.request.uid AS tool_call, actor.authorizations[1]['decision'] AS decision, actor.authorizations[1]['policy']['name'] AS decided_by FROM api_activity
  WHERE activity_name = 'Tool Decision'),
cloudtrail AS (
  SELECT time, time_dt, api.service.name AS service, api.operation AS operation, actor.user.name AS principal FROM api_activity WHERE metadata.product.name = 'CloudTrail'
  UNION ALL
  SELECT time, time_dt, api.service.name, api.operation, actor.user.name FROM account_change),
linked AS (
  SELECT DISTINCT c.time, c.time_dt, c.operation, c.principal, k.agent, k.session, k.tool, k.tool_call, k.time AS call_time
  FROM cloudtrail c JOIN calls k ON lower(c.service) = lower(k.service) AND lower(c.operation) = lower(k.operation) AND c.time BETWEEN k.time - 5000 AND k.time + 60000),
latest AS (
  -- The latest call before each change made it (as the engine's agent_links decide).
  SELECT *, row_number() OVER (PARTITION BY time, operation, principal ORDER BY call_time DESC) AS n FROM linked)
SELECT l.time_dt, l.operation, l.principal, l.agent, l.session, l.tool, l.tool_call, coalesce(d.decision, 'none seen') AS decision, d.decided_by
FROM latest l LEFT JOIN decisions d ON d.tool_call = l.tool_call
WHERE l.n = 1
ORDER BY l.time_dt
