-- agent_mutations: every mutating cloud API call (CloudTrail create, update, delete) that an AI
-- agent made, with the agent tool call that made it and the human decision on that call.
--
-- A change is linked to an agent tool call by everything both sides carry, as the detection
-- engine's `agent_links` (docs/detection.md): the call is of the same AWS service and operation,
-- made at most a minute before the change (5 s after, for clock skew); a call that names
-- another region, or other resources (ids, names, ARNs: `resources_match`), than the change is
-- ruled out. Calls whose resources agree with the change win over calls that name none. When
-- the calls that still fit come from more than one agent session, the change is `ambiguous`:
-- the candidate agents are named, no tool call or approval is guessed.
-- An agent the registry recognized on the CloudTrail record itself (actor.app_name,
-- docs/agents.md) names the change when no tool call was logged.
-- approval: the coding agent's decision on the tool call (accept, reject), 'none seen' when the
-- call has no decision event, 'no tool call' when only the registry names the agent,
-- 'ambiguous' when calls of several sessions fit. link: linked, ambiguous or registry;
-- confidence: high (the resources agree), medium (nothing contradicts it), none.
WITH calls AS (
  SELECT actor.app_name AS agent, actor.session.uid AS session, api.request.uid AS tool_call, api.group.name AS tool,
         api.service.name AS service, api.operation AS operation, time, resources AS call_resources,
         resources[1]['region'] AS call_region FROM api_activity
  WHERE array_has(metadata.profiles, 'ai_operation') AND activity_name <> 'Tool Decision' AND api.group.name IS NOT NULL AND api.service.name LIKE '%.amazonaws.com'),
decisions AS (
  SELECT api.request.uid AS tool_call, actor.session.uid AS session, actor.authorizations[1]['decision'] AS decision, actor.authorizations[1]['policy']['name'] AS decided_by FROM api_activity
  WHERE activity_name = 'Tool Decision'),
changes AS (
  SELECT metadata.uid AS event_uid, time, time_dt, api.service.name AS service, api.operation AS operation, actor.user.name AS principal,
         actor.app_name AS registry_agent, status, api.response.error AS error, resources AS change_resources, cloud.region AS change_region, region, accountId, eventDay
  FROM api_activity WHERE metadata.product.name = 'CloudTrail' AND is_mutation(api.operation)
  UNION ALL
  SELECT metadata.uid, time, time_dt, api.service.name, api.operation, actor.user.name, actor.app_name, status, api.response.error,
         NULL, cloud.region, region, accountId, eventDay
  FROM account_change WHERE is_mutation(api.operation)),
fitting AS (
  SELECT c.event_uid, c.time AS change_time, k.agent, k.session, k.tool, k.tool_call, k.time AS call_time,
         resources_match(k.call_resources, c.change_resources) AS agreement
  FROM changes c JOIN calls k
    ON lower(c.service) = lower(k.service) AND lower(c.operation) = lower(k.operation) AND c.time BETWEEN k.time - 5000 AND k.time + 60000
  WHERE (k.call_region IS NULL OR c.change_region IS NULL OR lower(k.call_region) = lower(c.change_region))
    AND resources_match(k.call_resources, c.change_resources) >= 0),
best AS (
  SELECT *, max(agreement) OVER (PARTITION BY event_uid, change_time) AS top FROM fitting),
pool AS (
  SELECT *, count(DISTINCT coalesce(session, '')) OVER (PARTITION BY event_uid, change_time) AS sessions,
         count(*) OVER (PARTITION BY event_uid, change_time) AS candidates,
         row_number() OVER (PARTITION BY event_uid, change_time ORDER BY call_time DESC) AS n
  FROM best WHERE agreement = top),
agents AS (
  SELECT event_uid, change_time, array_to_string(array_sort(array_agg(DISTINCT agent)), ' or ') AS agents FROM pool GROUP BY event_uid, change_time),
chosen AS (
  SELECT p.event_uid, p.change_time, p.candidates, p.sessions, p.top,
         CASE WHEN p.sessions > 1 THEN a.agents ELSE p.agent END AS agent,
         CASE WHEN p.sessions > 1 THEN NULL ELSE p.session END AS session,
         CASE WHEN p.sessions > 1 THEN NULL ELSE p.tool END AS tool,
         CASE WHEN p.sessions > 1 THEN NULL ELSE p.tool_call END AS tool_call
  FROM pool p JOIN agents a ON a.event_uid = p.event_uid AND a.change_time = p.change_time WHERE p.n = 1)
SELECT c.time_dt, c.operation, c.service, c.principal, coalesce(k.agent, c.registry_agent) AS agent,
       k.session, k.tool, k.tool_call,
       CASE WHEN k.sessions > 1 THEN 'ambiguous' WHEN k.tool_call IS NULL THEN 'no tool call' ELSE coalesce(d.decision, 'none seen') END AS approval,
       d.decided_by,
       CASE WHEN k.sessions > 1 THEN 'ambiguous' WHEN k.tool_call IS NULL THEN 'registry' ELSE 'linked' END AS link,
       CASE WHEN k.sessions > 1 OR k.tool_call IS NULL THEN 'none' WHEN k.top = 1 THEN 'high' ELSE 'medium' END AS confidence,
       coalesce(k.candidates, 0) AS candidates,
       c.status, c.error, c.event_uid, c.time, c.region, c.accountId, c.eventDay
FROM changes c LEFT JOIN chosen k ON k.event_uid = c.event_uid AND k.change_time = c.time
LEFT JOIN decisions d ON d.tool_call = k.tool_call AND d.session IS NOT DISTINCT FROM k.session
WHERE k.agent IS NOT NULL OR c.registry_agent IS NOT NULL
