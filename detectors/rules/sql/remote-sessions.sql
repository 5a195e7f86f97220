-- id: ocelot.remote-sessions
-- title: Interactive sessions opened on several instances
-- description: One principal opens SSM Session Manager sessions on three or more instances
-- description: within ten minutes: hands-on-keyboard access spreading across the fleet. One
-- description: session is routine administration; several at once by one identity is how an
-- description: intruder (or a runaway agent) moves between machines.
-- severity: medium
-- attack: T1021.007, T1651
-- tactics: execution, lateral-movement
-- table: api_activity
-- window: 10m
-- lateness: 2m
-- group_by: principal
-- filter: api.response.error IS NULL AND api.service.name = 'ssm.amazonaws.com' AND api.operation = 'StartSession'
-- fires: ../../tests/data/cloudtrail/stratus-synthetic/aws.execution.ssm-start-session.jsonl
-- quiet: ../../samples/cloudtrail/stratus/aws.execution.ssm-send-command.jsonl

SELECT actor.user.uid AS principal, max(actor.app_name) AS agent, array_agg(metadata.uid ORDER BY time) AS uids,
       count(DISTINCT json_get(coalesce(api.request.data, json_get(unmapped, 'requestParameters')), 'target')) AS instances
FROM api_activity
GROUP BY actor.user.uid
HAVING count(DISTINCT json_get(coalesce(api.request.data, json_get(unmapped, 'requestParameters')), 'target')) >= 3
