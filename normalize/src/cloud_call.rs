//! The cloud API call an agent's tool call makes, read from its arguments: an AWS CLI command
//! line (`aws s3api delete-bucket --bucket b`, possibly inside `cd x && ... | jq`), or
//! SDK-style arguments (`{"service": "ec2", "operation": "terminate_instances", ...}`). The
//! service is given as CloudTrail's `eventSource` and the operation as CloudTrail's
//! `eventName`, so agent actions join CloudTrail records on equal values.

/// A parsed AWS API call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudCall {
    /// CloudTrail `eventSource`: `s3.amazonaws.com`.
    pub service: String,
    /// CloudTrail `eventName`: `DeleteBucket`.
    pub operation: String,
    /// Resource identifiers named by the call, with their CloudFormation-style type.
    pub resources: Vec<(String, &'static str)>,
    /// The region, when the command names one.
    pub region: Option<String>,
}

/// Every AWS CLI call in a shell command line.
pub fn parse_shell(cmd: &str) -> Vec<CloudCall> {
    let words = split_words(cmd);
    let mut out = Vec::new();
    // Commands are separated by shell operators; each may start with `sudo`, env assignments.
    for segment in words.split(|w| matches!(w.as_str(), "&&" | "||" | ";" | "|" | "&")) {
        let mut rest = segment.iter().skip_while(|w| w.as_str() == "sudo" || w.as_str() == "env" || is_assignment(w)).peekable();
        if rest.next().map(String::as_str) != Some("aws") {
            continue;
        }
        let args: Vec<&str> = rest.map(String::as_str).collect();
        if let Some(call) = parse_aws_args(&args) {
            out.push(call);
        }
    }
    out
}

fn is_assignment(w: &str) -> bool {
    w.split_once('=').is_some_and(|(k, _)| !k.is_empty() && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
}

/// Splits a command line into words, honouring quotes and backslashes; shell operators
/// (`&&`, `||`, `;`, `|`, `&`) are words of their own.
fn split_words(cmd: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut has = false;
    let mut chars = cmd.chars().peekable();
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('"'), '\\') => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            (Some(_), c) => cur.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                has = true;
            }
            (None, '\\') => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                    has = true;
                }
            }
            (None, c) if c.is_whitespace() => {
                if has || !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                    has = false;
                }
            }
            (None, '&' | '|' | ';') => {
                if has || !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                    has = false;
                }
                let mut op = c.to_string();
                if matches!(c, '&' | '|') && chars.peek() == Some(&c) {
                    op.push(chars.next().unwrap_or(c));
                }
                out.push(op);
            }
            (None, c) => cur.push(c),
        }
    }
    if has || !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Global options of the AWS CLI that take a value.
const GLOBAL_WITH_VALUE: &[&str] = &["--region", "--profile", "--output", "--endpoint-url", "--query", "--color", "--ca-bundle", "--cli-read-timeout", "--cli-connect-timeout", "--cli-binary-format"];

/// `aws [global options] SERVICE OPERATION [options]`.
fn parse_aws_args(args: &[&str]) -> Option<CloudCall> {
    let mut i = 0;
    let mut region = None;
    let mut positional = Vec::new();
    let mut options: Vec<(&str, Vec<&str>)> = Vec::new();
    while i < args.len() {
        let a = args[i];
        if let Some(opt) = a.strip_prefix("--") {
            let (name, inline) = match opt.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (opt, None),
            };
            let flag = format!("--{name}");
            let mut values: Vec<&str> = inline.into_iter().collect();
            // Before the service and command only the global options listed take a value
            // (`--debug` takes none); after them an option takes the words up to the next one.
            let global = positional.len() < 2;
            if inline.is_none() && (!global || GLOBAL_WITH_VALUE.contains(&flag.as_str())) {
                while i + 1 < args.len() && !args[i + 1].starts_with("--") {
                    i += 1;
                    values.push(args[i]);
                    if GLOBAL_WITH_VALUE.contains(&flag.as_str()) {
                        break;
                    }
                }
            }
            if flag == "--region" {
                region = values.first().map(|v| v.to_string());
            }
            options.push((name, values));
        } else {
            positional.push(a);
        }
        i += 1;
    }
    let (service, command) = (*positional.first()?, *positional.get(1)?);
    let (source, operation) = match service {
        // The high-level S3 commands: the API call each makes.
        "s3" => {
            let op = match command {
                "rb" => "DeleteBucket",
                "mb" => "CreateBucket",
                "rm" => "DeleteObject",
                "cp" | "mv" | "sync" => "PutObject",
                "ls" => "ListObjectsV2",
                "presign" => "GetObject",
                "website" => "PutBucketWebsite",
                _ => return None,
            };
            ("s3.amazonaws.com".to_string(), op.to_string())
        }
        other => (format!("{}.amazonaws.com", event_source_prefix(other)), pascal(command)),
    };
    let mut resources = Vec::new();
    for (name, values) in &options {
        if let Some(kind) = option_resource(name) {
            resources.extend(values.iter().map(|v| (v.to_string(), kind)));
        }
    }
    // s3://bucket/key arguments name the bucket.
    for p in args.iter() {
        if let Some(rest) = p.strip_prefix("s3://") {
            let bucket = rest.split('/').next().unwrap_or("");
            if !bucket.is_empty() {
                resources.push((bucket.to_string(), "AWS::S3::Bucket"));
            }
        }
    }
    Some(CloudCall { service: source, operation, resources, region })
}

/// The CLI's service name to the prefix of CloudTrail's eventSource, where they differ.
fn event_source_prefix(cli: &str) -> &str {
    match cli {
        "s3api" => "s3",
        "elbv2" => "elasticloadbalancing",
        "configservice" => "config",
        "stepfunctions" => "states",
        "cognito-idp" => "cognito-idp",
        "opensearch" => "es",
        "application-autoscaling" => "application-autoscaling",
        "route53domains" => "route53domains",
        other => other,
    }
}

/// `terminate-instances` / `terminate_instances` -> `TerminateInstances`.
pub fn pascal(s: &str) -> String {
    s.split(['-', '_'])
        .filter(|p| !p.is_empty())
        .map(|p| {
            let mut c = p.chars();
            c.next().map(|f| f.to_ascii_uppercase().to_string() + c.as_str()).unwrap_or_default()
        })
        .collect()
}

/// Options that name a resource, and its type.
fn option_resource(name: &str) -> Option<&'static str> {
    Some(match name {
        "bucket" => "AWS::S3::Bucket",
        "instance-ids" | "instance-id" => "AWS::EC2::Instance",
        "group-id" | "group-ids" => "AWS::EC2::SecurityGroup",
        "volume-id" => "AWS::EC2::Volume",
        "snapshot-id" => "AWS::EC2::Snapshot",
        "vpc-id" => "AWS::EC2::VPC",
        "function-name" => "AWS::Lambda::Function",
        "db-instance-identifier" => "AWS::RDS::DBInstance",
        "db-cluster-identifier" => "AWS::RDS::DBCluster",
        "role-name" => "AWS::IAM::Role",
        "user-name" => "AWS::IAM::User",
        "policy-arn" => "AWS::IAM::Policy",
        "stack-name" => "AWS::CloudFormation::Stack",
        "table-name" => "AWS::DynamoDB::Table",
        "secret-id" => "AWS::SecretsManager::Secret",
        "key-id" => "AWS::KMS::Key",
        "trail-name" => "AWS::CloudTrail::Trail",
        "log-group-name" => "AWS::Logs::LogGroup",
        "cluster" | "cluster-name" => "AWS::ECS::Cluster",
        "repository-name" => "AWS::ECR::Repository",
        "detector-id" => "AWS::GuardDuty::Detector",
        "hosted-zone-id" => "AWS::Route53::HostedZone",
        "topic-arn" => "AWS::SNS::Topic",
        "queue-url" => "AWS::SQS::Queue",
        "resource-arn" => "",
        _ => return None,
    })
}

/// SDK-style arguments: a service and an operation (snake_case or PascalCase), and the
/// request parameters that name resources.
pub fn parse_sdk(service: &str, operation: &str, params: &[(&str, &str)]) -> CloudCall {
    let service = service.trim().trim_end_matches(".amazonaws.com");
    let resources = params
        .iter()
        .filter_map(|(k, v)| {
            let kebab: String = k
                .chars()
                .enumerate()
                .flat_map(|(i, c)| {
                    let lower = c.to_ascii_lowercase();
                    if c.is_ascii_uppercase() && i > 0 {
                        vec!['-', lower]
                    } else {
                        vec![lower]
                    }
                })
                .collect();
            let kebab = kebab.replace('_', "-");
            option_resource(&kebab).map(|t| (v.to_string(), t))
        })
        .collect();
    CloudCall { service: format!("{}.amazonaws.com", event_source_prefix(service)), operation: pascal(operation), resources, region: None }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aws_cli_commands_in_shell_lines() {
        let calls = parse_shell("cd infra && AWS_PAGER= aws --region us-east-1 ec2 terminate-instances --instance-ids i-1 i-2 --output json | jq .");
        assert_eq!(calls.len(), 1);
        let c = &calls[0];
        assert_eq!((c.service.as_str(), c.operation.as_str()), ("ec2.amazonaws.com", "TerminateInstances"));
        assert_eq!(c.resources, vec![("i-1".to_string(), "AWS::EC2::Instance"), ("i-2".to_string(), "AWS::EC2::Instance")]);
        assert_eq!(c.region.as_deref(), Some("us-east-1"));

        let c = &parse_shell("aws s3 rb s3://prod-logs --force")[0];
        assert_eq!((c.service.as_str(), c.operation.as_str()), ("s3.amazonaws.com", "DeleteBucket"));
        assert_eq!(c.resources, vec![("prod-logs".to_string(), "AWS::S3::Bucket")]);

        let c = &parse_shell(r#"aws s3api put-bucket-policy --bucket "my bucket" --policy '{"Version":"2012-10-17"}'"#)[0];
        assert_eq!(c.operation, "PutBucketPolicy");
        assert_eq!(c.resources, vec![("my bucket".to_string(), "AWS::S3::Bucket")]);

        let c = &parse_shell("aws iam attach-role-policy --role-name=ci --policy-arn arn:aws:iam::aws:policy/AdministratorAccess")[0];
        assert_eq!((c.service.as_str(), c.operation.as_str()), ("iam.amazonaws.com", "AttachRolePolicy"));
        assert_eq!(c.resources.len(), 2);

        assert!(parse_shell("terraform destroy -auto-approve; echo aws s3 rb").is_empty());
        let c = &parse_shell("aws --debug s3 cp --recursive ./out s3://dst/prefix")[0];
        assert_eq!((c.operation.as_str(), c.resources[0].0.as_str()), ("PutObject", "dst"));
        assert_eq!(parse_shell("aws elbv2 delete-load-balancer --load-balancer-arn x")[0].service, "elasticloadbalancing.amazonaws.com");
    }

    #[test]
    fn sdk_style_arguments() {
        let c = parse_sdk("ec2", "terminate_instances", &[("InstanceIds", "i-9")]);
        assert_eq!((c.service.as_str(), c.operation.as_str()), ("ec2.amazonaws.com", "TerminateInstances"));
        assert_eq!(c.resources, vec![("i-9".to_string(), "AWS::EC2::Instance")]);
    }
}
