-- Athena-style queries as analysts write them for Amazon Security Lake (OCSF columns, nested
-- dot paths of any depth, unaliased nested columns), run by tests/athena_sql.rs with `ocelot sql`
-- and with DuckDB over the same lake. Each ends in an ORDER BY that makes its rows one order.
SELECT actor.user.name, api.operation, count(*) AS calls
FROM api_activity
WHERE api.service.name = 'iam.amazonaws.com'
GROUP BY actor.user.name, api.operation
ORDER BY calls DESC, actor.user.name, api.operation
LIMIT 20
;
SELECT actor.user.account.uid, count(*) AS events
FROM api_activity
WHERE actor.user.account.uid IS NOT NULL
GROUP BY actor.user.account.uid
ORDER BY events DESC, actor.user.account.uid
;
SELECT src_endpoint.ip, api.service.name, count(*) AS n
FROM api_activity
WHERE src_endpoint.ip IS NOT NULL AND api.response.error IS NOT NULL
GROUP BY src_endpoint.ip, api.service.name
ORDER BY n DESC, src_endpoint.ip, api.service.name
LIMIT 15
;
SELECT actor.session.issuer, count(DISTINCT api.operation) AS operations
FROM api_activity
WHERE actor.user.type = 'AssumedRole'
GROUP BY actor.session.issuer
HAVING count(DISTINCT api.operation) > 1
ORDER BY operations DESC, actor.session.issuer
;
SELECT cloud.region, eventDay, count(*) AS events
FROM api_activity
GROUP BY cloud.region, eventDay
ORDER BY events DESC, cloud.region, eventDay
LIMIT 10
;
SELECT time, metadata.uid AS event_uid, api.operation, api.request.uid
FROM api_activity
WHERE api.operation IN ('DeleteBucket', 'StopLogging', 'DeleteTrail', 'TerminateInstances')
ORDER BY time, metadata.uid
;
SELECT CASE WHEN actor.user.type = 'Root' THEN 'root' WHEN actor.user.type = 'AssumedRole' THEN 'role' ELSE 'other' END AS kind,
       count(*) AS events
FROM api_activity
GROUP BY 1
ORDER BY kind
;
SELECT lower(http_request.user_agent) AS agent, count(*) AS n
FROM api_activity
WHERE http_request.user_agent LIKE '%boto%' OR http_request.user_agent LIKE '%aws-cli%'
GROUP BY 1
ORDER BY n DESC, agent
LIMIT 10
;
SELECT "user".name, is_mfa, status, src_endpoint.ip
FROM authentication
ORDER BY "user".name, status, src_endpoint.ip, is_mfa
;
SELECT actor.user.name, "user".name AS target, activity_name
FROM account_change
WHERE actor.user.name IS NOT NULL
ORDER BY actor.user.name, target, activity_name
;
SELECT finding_info.title, severity, cloud.account.uid
FROM detection_finding
ORDER BY finding_info.title, severity, cloud.account.uid
;
SELECT firewall_rule.uid, http_request.url.path, disposition, count(*) AS n
FROM http_activity
GROUP BY firewall_rule.uid, http_request.url.path, disposition
ORDER BY n DESC, firewall_rule.uid, http_request.url.path, disposition
;
SELECT a.api.operation, b.actor.user.name
FROM api_activity a JOIN api_activity b ON a.metadata.uid = b.metadata.uid
WHERE a.api.operation LIKE 'Delete%'
ORDER BY a.api.operation, b.actor.user.name
LIMIT 10
