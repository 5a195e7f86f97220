-- id: ocelot.s3-ransomware
-- title: S3 objects deleted or overwritten in bulk (ransomware pattern)
-- description: Within ten minutes one principal deletes twenty or more objects of a bucket
-- description: (DeleteObject one by one, or DeleteObjects in batches), or reads and then
-- description: overwrites ten or more of its objects (client-side encryption in place). Needs S3
-- description: data events in the trail. Any principal: an agent, a person, or stolen keys.
-- severity: critical
-- attack: T1485, T1486
-- tactics: impact
-- table: api_activity
-- window: 10m
-- lateness: 2m
-- group_by: principal
-- filter: api.response.error IS NULL AND api.service.name = 's3.amazonaws.com' AND api.operation IN ('DeleteObject', 'DeleteObjects', 'GetObject', 'PutObject')
-- fires: ../../tests/data/cloudtrail/stratus-synthetic/aws.impact.s3-ransomware-batch-deletion.jsonl
-- fires: ../../tests/data/cloudtrail/stratus-synthetic/aws.impact.s3-ransomware-individual-deletion.jsonl
-- fires: ../../tests/data/cloudtrail/stratus-synthetic/aws.impact.s3-ransomware-client-side-encryption.jsonl
-- quiet: ../../samples/cloudtrail/stratus/aws.exfiltration.ec2-share-ami.jsonl

WITH objects AS (
  SELECT actor.user.uid AS principal, actor.app_name AS agent, metadata.uid AS uid, time, api.operation AS operation,
         json_get(coalesce(api.request.data, json_get(unmapped, 'requestParameters')), 'bucketName') AS bucket,
         json_get(coalesce(api.request.data, json_get(unmapped, 'requestParameters')), 'key') AS key,
         -- DeleteObjects lists each object it deleted among the record's resources, besides the bucket.
         greatest(coalesce(array_length(resources), 1) - 1, 1) AS listed
  FROM api_activity),
per_key AS (
  SELECT principal, bucket, key, max(agent) AS agent, array_agg(uid ORDER BY time) AS uids, min(time) AS first,
         sum(CASE WHEN operation = 'DeleteObject' THEN 1 WHEN operation = 'DeleteObjects' THEN listed ELSE 0 END) AS deleted,
         max(CASE WHEN operation = 'GetObject' THEN 1 ELSE 0 END) * max(CASE WHEN operation = 'PutObject' THEN 1 ELSE 0 END) AS rewritten
  FROM objects GROUP BY principal, bucket, key)
SELECT principal, bucket, max(agent) AS agent, flatten(array_agg(uids ORDER BY first)) AS uids,
       sum(deleted) AS objects_deleted, sum(rewritten) AS objects_rewritten
FROM per_key
GROUP BY principal, bucket
HAVING sum(deleted) >= 20 OR sum(rewritten) >= 10
