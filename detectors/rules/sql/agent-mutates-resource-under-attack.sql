-- id: ocelot.agent-mutates-resource-under-attack
-- title: AI agent changed a resource while Shield reports it under DDoS attack
-- description: An AI agent mutates a resource (by ARN or name) during a Shield Advanced attack on
-- description: it, or within an hour after: changes made in an incident by automation, not by the
-- description: people handling it. Attack and change are matched within the same hour window.
-- severity: high
-- attack: T1499, T1489
-- tactics: impact
-- tables: api_activity, detection_finding
-- window: 2h every 1h
-- lateness: 10m
-- group_by: agent, resource
-- filter.api_activity: metadata.product.name = 'CloudTrail' AND is_mutation(api.operation)
-- filter.detection_finding: metadata.product.name = 'AWS Shield Advanced'
-- fires: tests/agent-under-attack.fires.jsonl
-- quiet: tests/agent-under-attack.quiet.jsonl
-- quiet: ../../samples/agent/session

WITH attacked AS (
  SELECT finding_info.uid AS attack, finding_info.first_seen_time AS started, coalesce(finding_info.last_seen_time, time) AS ended,
         unnest(resources) AS r
  FROM detection_finding WHERE metadata.product.name = 'AWS Shield Advanced'),
by_agent AS (
  SELECT a.metadata.uid AS uid, a.time AS at, coalesce(l.agent, a.actor.app_name) AS who, a.api.operation AS op, a.resources AS res
  FROM api_activity a LEFT JOIN agent_links l ON l.uid = a.metadata.uid
  WHERE l.uid IS NOT NULL OR a.actor.app_name IS NOT NULL),
changes AS (SELECT uid, at AS time, who AS agent, op AS operation, unnest(res) AS r FROM by_agent)
SELECT c.agent, coalesce(k.r['uid'], k.r['name']) AS resource, max(k.attack) AS attack,
       array_agg(DISTINCT c.uid) AS uids, array_to_string(array_agg(DISTINCT c.operation), ', ') AS operations
FROM changes c JOIN attacked k
  ON (c.r['uid'] = k.r['uid'] OR c.r['name'] = k.r['name']) AND c.time BETWEEN k.started AND k.ended + 3600000
GROUP BY c.agent, coalesce(k.r['uid'], k.r['name'])
