-- id: ocelot.persistence-backdoors
-- title: Code or access path planted: Lambda code, permissions or layers, EC2 user data or SSH keys, notebook lifecycle scripts, federation tokens
-- description: A Lambda function's code replaced by a person or an AI agent (deploy pipelines
-- description: run as roles and are left out), or the function opened to any principal or
-- description: another account; an EC2 instance's user data (its boot script) modified; an SSH key
-- description: pushed through EC2 Instance Connect or the serial console; a layer of another
-- description: account added to a function (a Lambda extension runs with its credentials); a
-- description: SageMaker notebook's lifecycle script created or swapped; a federation token issued to an IAM user
-- description: (it outlives the user's key being disabled).
-- severity: medium
-- attack: T1546, T1098.004, T1021.004, T1550.001
-- tactics: persistence, lateral-movement
-- table: api_activity
-- group_by: principal
-- filter: api.response.error IS NULL AND api.service.name IN ('lambda.amazonaws.com', 'ec2.amazonaws.com', 'ec2-instance-connect.amazonaws.com', 'sts.amazonaws.com', 'sagemaker.amazonaws.com')
-- filter: AND (api.operation LIKE 'UpdateFunctionCode%' OR api.operation LIKE 'AddPermission%' OR api.operation LIKE 'UpdateFunctionConfiguration%' OR api.operation IN ('ModifyInstanceAttribute', 'SendSSHPublicKey',
-- filter: 'SendSerialConsoleSSHPublicKey', 'GetFederationToken', 'CreateNotebookInstanceLifecycleConfig', 'UpdateNotebookInstanceLifecycleConfig', 'UpdateNotebookInstance')) AND (
-- filter: (api.service.name = 'lambda.amazonaws.com' AND api.operation LIKE 'UpdateFunctionCode%' AND (actor.user.type IN ('IAMUser', 'Root', 'FederatedUser') OR actor.user.uid LIKE '%:assumed-role/AWSReservedSSO_%' OR is_agent(actor)))
-- filter: OR (api.service.name = 'lambda.amazonaws.com' AND api.operation LIKE 'AddPermission%' AND (json_get(coalesce(api.request.data, json_get(unmapped, 'requestParameters')), 'principal') = '*' OR json_get(coalesce(api.request.data, json_get(unmapped, 'requestParameters')), 'principal') NOT LIKE '%.amazonaws.com'))
-- filter: OR (api.service.name = 'ec2.amazonaws.com' AND api.operation = 'ModifyInstanceAttribute' AND json_get(coalesce(api.request.data, json_get(unmapped, 'requestParameters')), 'userData') IS NOT NULL)
-- filter: OR (api.service.name = 'ec2-instance-connect.amazonaws.com' AND api.operation IN ('SendSSHPublicKey', 'SendSerialConsoleSSHPublicKey'))
-- filter: OR (api.service.name = 'lambda.amazonaws.com' AND api.operation LIKE 'UpdateFunctionConfiguration%' AND regexp_like(json_get(coalesce(api.request.data, json_get(unmapped, 'requestParameters')), 'layers'), 'arn:aws:lambda:[^:]*:[0-9]{12}:layer')
-- filter:     AND NOT strpos(coalesce(json_get(coalesce(api.request.data, json_get(unmapped, 'requestParameters')), 'layers'), ''), concat(':', cloud.account.uid, ':layer')) > 0)
-- filter: OR (api.service.name = 'sagemaker.amazonaws.com' AND (api.operation IN ('CreateNotebookInstanceLifecycleConfig', 'UpdateNotebookInstanceLifecycleConfig')
-- filter:     OR api.operation = 'UpdateNotebookInstance' AND json_get(coalesce(api.request.data, json_get(unmapped, 'requestParameters')), 'lifecycleConfigName') IS NOT NULL))
-- filter: OR (api.service.name = 'sts.amazonaws.com' AND api.operation = 'GetFederationToken'))
-- fires: ../../samples/cloudtrail/stratus/aws.persistence.lambda-backdoor-function.jsonl
-- fires: ../../samples/cloudtrail/stratus/aws.persistence.lambda-overwrite-code.jsonl
-- fires: ../../samples/cloudtrail/stratus/aws.execution.ec2-user-data.jsonl
-- fires: ../../samples/cloudtrail/stratus/aws.lateral-movement.ec2-instance-connect.jsonl
-- fires: ../../samples/cloudtrail/stratus/aws.persistence.sts-federation-token.jsonl
-- fires: ../../tests/data/cloudtrail/stratus-synthetic/aws.lateral-movement.ec2-serial-console-send-ssh-public-key.jsonl
-- fires: ../../tests/data/cloudtrail/stratus-synthetic/aws.persistence.lambda-layer-extension.jsonl
-- fires: ../../tests/data/cloudtrail/stratus-synthetic/aws.execution.sagemaker-update-lifecycle-config.jsonl
-- quiet: ../../samples/cloudtrail/stratus/aws.discovery.ec2-download-user-data.jsonl

SELECT metadata.uid AS uid, actor.user.uid AS principal, actor.app_name AS agent,
       api.service.name AS service, api.operation AS operation, status
FROM api_activity
