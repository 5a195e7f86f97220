-- Each CloudTrail event with the AI-agent tool call that made it (same AWS service and
-- operation, within a minute after the call), and the human decision on that call.
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
  SELECT time, time_dt, api.service.name, api.operation, actor.user.name FROM account_change)
SELECT DISTINCT c.time_dt, c.operation, c.principal, k.agent, k.session, k.tool, k.tool_call, coalesce(d.decision, 'none seen') AS decision, d.decided_by
FROM cloudtrail c JOIN calls k ON c.service = k.service AND c.operation = k.operation AND c.time BETWEEN k.time AND k.time + 60000
LEFT JOIN decisions d ON d.tool_call = k.tool_call
ORDER BY c.time_dt
