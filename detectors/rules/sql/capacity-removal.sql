-- id: ocelot.capacity-removal
-- title: Capacity removed across many resources
-- description: Instances terminated, Auto Scaling groups, EKS node groups or ECS services cut
-- description: to zero or deleted, load balancer targets deregistered: three or more resources
-- description: within 10 minutes, or any cut to zero. AI automation that removes capacity until
-- description: a service falls over looks like this. Names the agent when there is one.
-- description: A person signed in through IAM Identity Center (an AWSReservedSSO_ role session)
-- description: with no agent involved is held to ten resources: a handful of terminations by an
-- description: administrator is routine work, not an incident (docs/detection.md).
-- severity: high
-- attack: T1489, T1529
-- tactics: impact
-- tables: api_activity
-- window: 10m
-- lateness: 2m
-- group_by: principal
-- filter: metadata.product.name = 'CloudTrail' AND api.operation IN ('TerminateInstances', 'DeleteAutoScalingGroup', 'DeleteNodegroup', 'DeleteService',
-- filter: 'DeregisterTargets', 'DeregisterInstancesFromLoadBalancer', 'UpdateAutoScalingGroup', 'SetDesiredCapacity', 'UpdateNodegroupConfig', 'UpdateService') AND (
-- filter: api.operation IN ('TerminateInstances', 'DeleteAutoScalingGroup', 'DeleteNodegroup', 'DeleteService', 'DeregisterTargets', 'DeregisterInstancesFromLoadBalancer')
-- filter: OR api.operation IN ('UpdateAutoScalingGroup', 'SetDesiredCapacity') AND (json_get(coalesce(api.request.data, json_get(unmapped, 'requestParameters')), 'desiredCapacity') = '0' OR json_get(coalesce(api.request.data, json_get(unmapped, 'requestParameters')), 'minSize') = '0' AND json_get(coalesce(api.request.data, json_get(unmapped, 'requestParameters')), 'maxSize') = '0')
-- filter: OR api.operation = 'UpdateNodegroupConfig' AND json_get(coalesce(api.request.data, json_get(unmapped, 'requestParameters')), 'scalingConfig.desiredSize') = '0'
-- filter: OR api.operation = 'UpdateService' AND json_get(coalesce(api.request.data, json_get(unmapped, 'requestParameters')), 'desiredCount') = '0')
-- fires: tests/capacity-removal.fires.jsonl
-- quiet: ../../samples/agent/benign
-- quiet: ../../tests/data/cloudtrail/routine-admin.jsonl

SELECT actor.user.uid AS principal, max(actor.app_name) AS agent, array_agg(metadata.uid ORDER BY time) AS uids,
       sum(greatest(coalesce(array_length(resources), 1), 1)) AS resources_removed,
       array_to_string(array_agg(DISTINCT api.operation), ', ') AS operations
FROM api_activity
GROUP BY actor.user.uid
HAVING sum(greatest(coalesce(array_length(resources), 1), 1)) >= CASE
           WHEN max(actor.app_name) IS NULL AND bool_and(actor.user.uid LIKE '%:assumed-role/AWSReservedSSO%') THEN 10 ELSE 3 END
    OR sum(CASE WHEN api.operation IN ('UpdateAutoScalingGroup', 'SetDesiredCapacity', 'UpdateNodegroupConfig', 'UpdateService') THEN 1 ELSE 0 END) >= 1
