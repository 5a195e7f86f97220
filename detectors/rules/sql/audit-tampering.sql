-- id: ocelot.audit-tampering
-- title: Audit or security control disabled or weakened
-- description: A principal (an AI agent's role included: the finding names the agent) stops,
-- description: deletes or narrows what records and guards the account: CloudTrail trails and
-- description: event selectors, VPC flow logs, GuardDuty, Security Hub, Config, Shield
-- description: protections, WAF web ACLs, KMS keys scheduled for deletion, DNS query logging,
-- description: log groups, and the policies of log buckets. Successful calls only (a denied
-- description: attempt is in CloudTrail, but nothing was weakened).
-- severity: high
-- attack: T1562.008, T1562.001
-- tactics: defense-evasion
-- table: api_activity
-- group_by: principal
-- filter: api.response.error IS NULL AND (
-- filter: (api.service.name = 'cloudtrail.amazonaws.com' AND api.operation IN ('StopLogging', 'DeleteTrail', 'UpdateTrail', 'DeleteEventDataStore', 'StopEventDataStoreIngestion'))
-- filter: OR (api.service.name = 'cloudtrail.amazonaws.com' AND api.operation = 'PutEventSelectors' AND (json_get(coalesce(api.request.data, json_get(unmapped, 'requestParameters')), 'eventSelectors.includeManagementEvents') LIKE '%false%' OR json_get(coalesce(api.request.data, json_get(unmapped, 'requestParameters')), 'eventSelectors.readWriteType') LIKE '%Only%' OR json_get(coalesce(api.request.data, json_get(unmapped, 'requestParameters')), 'eventSelectors.excludeManagementEventSources') LIKE '%amazonaws%'))
-- filter: OR (api.service.name = 'ec2.amazonaws.com' AND api.operation = 'DeleteFlowLogs')
-- filter: OR (api.service.name = 'guardduty.amazonaws.com' AND (api.operation IN ('DeleteDetector', 'DisassociateFromMasterAccount', 'DisassociateFromAdministratorAccount', 'DeleteMembers', 'StopMonitoringMembers', 'DeletePublishingDestination') OR api.operation = 'UpdateDetector' AND json_get(coalesce(api.request.data, json_get(unmapped, 'requestParameters')), 'enable') = 'false'))
-- filter: OR (api.service.name = 'securityhub.amazonaws.com' AND api.operation IN ('DisableSecurityHub', 'BatchDisableStandards', 'DisableImportFindingsForProduct', 'DisassociateFromAdministratorAccount'))
-- filter: OR (api.service.name = 'config.amazonaws.com' AND api.operation IN ('StopConfigurationRecorder', 'DeleteConfigurationRecorder', 'DeleteDeliveryChannel'))
-- filter: OR (api.service.name = 'shield.amazonaws.com' AND api.operation IN ('DeleteProtection', 'DeleteProtectionGroup', 'DisableProactiveEngagement', 'DisassociateDRTRole'))
-- filter: OR (api.service.name IN ('wafv2.amazonaws.com', 'waf.amazonaws.com', 'waf-regional.amazonaws.com') AND api.operation IN ('DeleteWebACL', 'DisassociateWebACL', 'DeleteLoggingConfiguration'))
-- filter: OR (api.service.name = 'kms.amazonaws.com' AND api.operation IN ('ScheduleKeyDeletion', 'DisableKey'))
-- filter: OR (api.service.name = 'route53resolver.amazonaws.com' AND api.operation IN ('DeleteResolverQueryLogConfig', 'DisassociateResolverQueryLogConfig'))
-- filter: OR (api.service.name = 'logs.amazonaws.com' AND api.operation = 'DeleteLogGroup')
-- filter: OR (api.service.name = 's3.amazonaws.com' AND api.operation IN ('PutBucketPolicy', 'DeleteBucketPolicy', 'PutBucketLogging', 'PutBucketLifecycle', 'PutBucketLifecycleConfiguration') AND regexp_like(lower(json_get(coalesce(api.request.data, json_get(unmapped, 'requestParameters')), 'bucketName')), 'log|trail|audit')))
-- fires: ../../samples/cloudtrail/stratus/aws.defense-evasion.cloudtrail-event-selectors.jsonl
-- fires: ../../samples/cloudtrail/stratus/aws.defense-evasion.dns-delete-logs.jsonl
-- fires: ../../samples/cloudtrail/stratus/aws.defense-evasion.cloudtrail-stop.jsonl
-- quiet: ../../samples/cloudtrail/stratus/aws.execution.ec2-user-data.jsonl

SELECT metadata.uid AS uid, actor.user.uid AS principal, actor.app_name AS agent,
       api.service.name AS service, api.operation AS operation, status
FROM api_activity
