-- id: ocelot.discovery-burst
-- title: Account enumerated: many read-only calls across services, SES, or Bedrock across regions
-- description: One principal makes eight or more distinct read-only calls (Get, List, Describe)
-- description: across four or more services within ten minutes, three or more distinct SES reads
-- description: (sending quota, identities: a spammer sizing up the account), or Bedrock model
-- description: reads in three or more regions (looking for models to abuse). Reconnaissance by
-- description: stolen credentials looks like this; so does a person exploring the console, hence
-- description: low severity: a finding to correlate, not an alarm.
-- severity: low
-- attack: T1580, T1087.004, T1526
-- tactics: discovery
-- table: api_activity
-- window: 10m
-- lateness: 2m
-- group_by: principal
-- filter: metadata.product.name = 'CloudTrail' AND activity_id = 2 AND api.service.name IS NOT NULL
-- fires: ../../tests/data/cloudtrail/stratus-synthetic/aws.discovery.ec2-enumerate-from-instance.jsonl
-- fires: ../../tests/data/cloudtrail/stratus-synthetic/aws.discovery.ses-enumerate.jsonl
-- fires: ../../tests/data/cloudtrail/stratus-synthetic/aws.discovery.bedrock-enumerate-models-multiple-regions.jsonl
-- quiet: ../../samples/cloudtrail/stratus/aws.exfiltration.ec2-share-ami.jsonl

SELECT actor.user.uid AS principal, max(actor.app_name) AS agent, array_agg(metadata.uid ORDER BY time) AS uids,
       count(DISTINCT concat(api.service.name, ':', api.operation)) AS operations,
       count(DISTINCT api.service.name) AS services
FROM api_activity
GROUP BY actor.user.uid
HAVING count(DISTINCT concat(api.service.name, ':', api.operation)) >= 8 AND count(DISTINCT api.service.name) >= 4
    OR count(DISTINCT CASE WHEN api.service.name = 'ses.amazonaws.com' THEN api.operation END) >= 3
    OR count(DISTINCT CASE WHEN api.service.name = 'bedrock.amazonaws.com' THEN cloud.region END) >= 3
