-- id: ocelot.privilege-escalation
-- title: Privilege escalation: admin or wildcard rights, credentials for others, trust changes
-- description: Administrator or wildcard policies attached or put inline; access keys or console
-- description: passwords created or reset for another user; a role's trust policy opened to other
-- description: AWS principals or anyone; and,
-- description: for AI agents, a role passed to new compute (an instance or function that then acts
-- description: with that role's rights).
-- severity: high
-- attack: T1098.001, T1098.003, T1078.004
-- tactics: privilege-escalation, persistence
-- tables: account_change, api_activity
-- group_by: principal
-- filter: api.response.error IS NULL AND api.operation IN ('AttachUserPolicy', 'AttachRolePolicy', 'AttachGroupPolicy', 'PutUserPolicy', 'PutRolePolicy', 'PutGroupPolicy',
-- filter: 'CreateAccessKey', 'CreateLoginProfile', 'UpdateLoginProfile', 'UpdateAssumeRolePolicy', 'RunInstances', 'CreateFunction20150331', 'CreateFunction')
-- fires: ../../samples/cloudtrail/stratus/aws.persistence.iam-backdoor-role.jsonl
-- fires: ../../samples/cloudtrail/stratus/aws.persistence.iam-create-user-login-profile.jsonl
-- fires: ../../samples/cloudtrail/stratus/aws.persistence.iam-create-admin-user.jsonl
-- fires: ../../tests/data/cloudtrail/stratus-synthetic/aws.persistence.iam-create-backdoor-role.jsonl
-- quiet: ../../samples/cloudtrail/stratus/aws.execution.ec2-launch-unusual-instances.jsonl

WITH calls AS (
  SELECT metadata.uid AS uid, actor.user.uid AS principal, actor.user.name AS caller, actor.app_name AS agent,
         is_agent(actor) AS by_agent, api.operation AS operation,
         coalesce(api.request.data, json_get(unmapped, 'requestParameters')) AS request, status
  FROM account_change
  UNION ALL
  SELECT metadata.uid, actor.user.uid, actor.user.name, actor.app_name, is_agent(actor), api.operation,
         coalesce(api.request.data, json_get(unmapped, 'requestParameters')), status
  FROM api_activity),
judged AS (
  SELECT *, CASE
    WHEN operation LIKE 'Attach%Policy' AND json_get(request, 'policyArn') LIKE '%:policy/AdministratorAccess'
      THEN 'administrator policy attached'
    WHEN operation LIKE 'Put%Policy' AND regexp_like(json_get(request, 'policyDocument'), '"Action"\s*:\s*(\[[^\]]*)?"(\*|iam:\*)"')
      THEN 'inline policy with wildcard actions'
    WHEN operation IN ('CreateAccessKey', 'CreateLoginProfile', 'UpdateLoginProfile')
         AND json_get(request, 'userName') IS NOT NULL AND json_get(request, 'userName') NOT IN (coalesce(caller, ''), regexp_replace(coalesce(principal, ''), '^.*/', ''))
      THEN 'credentials created for another user'
    -- A trust policy that lets other AWS principals (or anyone) assume the role.
    WHEN operation = 'UpdateAssumeRolePolicy' AND regexp_like(json_get(request, 'policyDocument'), '"Principal"\s*:\s*("\*"|\{[^}]*"AWS")')
      THEN 'role trust policy opened to other principals'
    WHEN by_agent AND operation = 'RunInstances' AND json_get(request, 'iamInstanceProfile') IS NOT NULL
      THEN 'agent passed a role to a new instance'
    WHEN by_agent AND operation LIKE 'CreateFunction%' AND json_get(request, 'role') IS NOT NULL
      THEN 'agent passed a role to a new function'
  END AS reason
  FROM calls)
SELECT uid, principal, agent, operation, reason, status FROM judged WHERE reason IS NOT NULL
