//! AWS CloudTrail records to OCSF 1.8.0: API Activity (6003) by default, Authentication (3002)
//! for sign-in events, Account Change (3001) for IAM user/role/policy/credential changes.
//! The mapping and its reasons are written down in `docs/mappings/cloudtrail.md`.

use std::net::IpAddr;
use std::sync::Arc;

use ocelot_schemas::{BatchWriter, ClassDef, I32Col, StrCol, WriterError};
use simd_json::BorrowedValue;

use super::agents::{AgentRule, Caller, Registry, Scratch};
use super::columns::columns;
use super::head::{obs, Head};
use super::insight::Insights;
use super::time::parse_time_ms;
use super::{ClassWriter, Normalizer, OcsfBatch};
use crate::decode::Origin;
use crate::json::{bool_of, encode, get, get_path, is_null, str_of, write_members_except, Consumed, Mapped};

columns! {
    pub struct Base {
        status_id: i32 = "status_id",
        status: str = "status",
        status_code: str = "status_code",
        status_detail: str = "status_detail",
        user_type: str = "actor.user.type",
        user_type_id: i32 = "actor.user.type_id",
        user_uid: str = "actor.user.uid",
        user_uid_alt: str = "actor.user.uid_alt",
        user_name: str = "actor.user.name",
        user_account: str = "actor.user.account.uid",
        session_issuer: str = "actor.session.issuer",
        session_created: i64 = "actor.session.created_time",
        session_created_dt: ts = "actor.session.created_time_dt",
        session_mfa: bool = "actor.session.is_mfa",
        session_credential: str = "actor.session.credential_uid",
        invoked_by: str = "actor.invoked_by",
        app_name: str = "actor.app_name",
        app_uid: str = "actor.app_uid",
        idp_name: str = "actor.idp.name",
        idp_uid: str = "actor.idp.uid",
        api_operation: str = "api.operation",
        api_service: str = "api.service.name",
        api_version: str = "api.version",
        api_request_uid: str = "api.request.uid",
        api_request_data: str = "api.request.data",
        api_response_data: str = "api.response.data",
        api_response_error: str = "api.response.error",
        api_response_message: str = "api.response.error_message",
        src_ip: str = "src_endpoint.ip",
        src_domain: str = "src_endpoint.domain",
        src_name: str = "src_endpoint.name",
        src_svc: str = "src_endpoint.svc_name",
        user_agent: str = "http_request.user_agent",
        host_header: str = "http_request.url.hostname",
        url_string: str = "http_request.url.url_string",
    }
}

columns! {
    pub struct ApiExtra {
        resources: list = "resources",
        res_uid: str = "resources.uid",
        res_name: str = "resources.name",
        res_type: str = "resources.type",
        res_account: str = "resources.owner.account.uid",
    }
}

columns! {
    /// The user that authenticates (Authentication) or whose account changes (Account Change).
    pub struct Target {
        uid: str = "user.uid",
        uid_alt: str = "user.uid_alt",
        name: str = "user.name",
        kind: str = "user.type",
        type_id: i32 = "user.type_id",
        account: str = "user.account.uid",
    }
}

columns! {
    pub struct AuthExtra {
        is_mfa: bool = "is_mfa",
        svc_name: str = "dst_endpoint.svc_name",
        service: str = "service.name",
    }
}

columns! {
    pub struct AcctExtra {
        policy_uid: str = "policy.uid",
        policy_name: str = "policy.name",
    }
}

/// Paths written per class: the normalizer's part of each projection.
pub const PATHS: &[(&str, &[&[&str]])] = &[
    ("api_activity", &[Head::PATHS, Base::PATHS, ApiExtra::PATHS]),
    ("authentication", &[Head::PATHS, Base::PATHS, Target::PATHS, AuthExtra::PATHS]),
    ("account_change", &[Head::PATHS, Base::PATHS, Target::PATHS, AcctExtra::PATHS]),
    ("detection_finding", super::insight::PATHS),
];

/// Source fields consumed by the mapping; everything else is kept in `unmapped`.
const MAPPED: &[&str] = &[
    "eventVersion",
    "eventTime",
    "eventSource",
    "eventName",
    "awsRegion",
    "sourceIPAddress",
    "userAgent",
    "requestParameters",
    "responseElements",
    "requestID",
    "eventID",
    "eventType",
    "recipientAccountId",
    "errorCode",
    "errorMessage",
    "eventCategory",
    "apiVersion",
    "resources",
    "userIdentity.type",
    "userIdentity.principalId",
    "userIdentity.arn",
    "userIdentity.accountId",
    "userIdentity.accessKeyId",
    "userIdentity.userName",
    "userIdentity.invokedBy",
    "userIdentity.identityProvider",
    "userIdentity.credentialId",
    "userIdentity.onBehalfOf.userId",
    "userIdentity.onBehalfOf.identityStoreArn",
    "userIdentity.sessionContext.sessionIssuer.arn",
    "userIdentity.sessionContext.attributes.creationDate",
    "userIdentity.sessionContext.attributes.mfaAuthenticated",
    "tlsDetails.clientProvidedHostHeader",
    "additionalEventData.LoginTo",
    "additionalEventData.MFAUsed",
    "insightDetails.eventName",
    "insightDetails.eventSource",
];

/// Where a record goes, with its activity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Api(i32),
    Auth(i32),
    Account(i32),
}

/// Sign-in events (signin.amazonaws.com and the IAM Identity Center portal) are Authentication.
fn auth_activity(source: &str, name: &str) -> Option<i32> {
    let signin = source == "signin.amazonaws.com" || source == "sso.amazonaws.com" && name.starts_with("Authenticate");
    let named = matches!(name, "ConsoleLogin" | "CheckMfa" | "SwitchRole" | "ExitRole" | "RenewRole" | "UserAuthentication" | "CredentialChallenge" | "CredentialVerification");
    // Steps of a sign-in (CheckMfa, CredentialChallenge, ...) are Other, as the reference maps them.
    (signin || named).then_some(match name {
        "ConsoleLogin" => 1, // Logon
        "ExitRole" => 2,     // Logoff
        "SwitchRole" => 7,   // Account Switch
        _ => 99,
    })
}

/// IAM user/role/policy/credential changes are Account Change, with OCSF's activity.
fn account_activity(source: &str, name: &str) -> Option<i32> {
    if source != "iam.amazonaws.com" {
        return None;
    }
    Some(match name {
        "CreateUser" | "CreateRole" | "CreateServiceLinkedRole" => 1,
        "ChangePassword" => 3,
        "CreateLoginProfile" | "UpdateLoginProfile" => 4,
        "DeleteLoginProfile" => 5,
        "DeleteUser" | "DeleteRole" | "DeleteServiceLinkedRole" => 6,
        "AttachUserPolicy" | "AttachRolePolicy" | "AttachGroupPolicy" | "PutUserPolicy" | "PutRolePolicy" | "PutGroupPolicy" | "PutUserPermissionsBoundary" | "PutRolePermissionsBoundary" => 7,
        "DetachUserPolicy"
        | "DetachRolePolicy"
        | "DetachGroupPolicy"
        | "DeleteUserPolicy"
        | "DeleteRolePolicy"
        | "DeleteGroupPolicy"
        | "DeleteUserPermissionsBoundary"
        | "DeleteRolePermissionsBoundary" => 8,
        "EnableMFADevice" | "CreateVirtualMFADevice" => 10,
        "DeactivateMFADevice" | "DeleteVirtualMFADevice" => 11,
        // Credential and membership changes OCSF has no activity for.
        "CreateAccessKey"
        | "DeleteAccessKey"
        | "UpdateAccessKey"
        | "UpdateAssumeRolePolicy"
        | "AddUserToGroup"
        | "RemoveUserFromGroup"
        | "UpdateUser"
        | "UpdateRole"
        | "CreateGroup"
        | "DeleteGroup"
        | "TagUser"
        | "UntagUser"
        | "TagRole"
        | "UntagRole" => 99,
        _ => return None,
    })
}

/// API Activity's create/read/update/delete from the operation's leading verb (the table is
/// the detectors', so detections and the normalizer agree on what a mutation is).
pub(crate) fn api_activity(name: &str, read_only: Option<bool>) -> i32 {
    crate::verbs::activity_id(name, read_only)
}

/// The resource type a request parameter names, if it names one.
fn param_resource_type(key: &str) -> Option<&'static str> {
    PARAM_RESOURCES.iter().find(|(k, _)| k.len() == key.len() && *k == key).map(|(_, t)| *t)
}

/// Request parameters that name a resource, and its CloudFormation-style type.
const PARAM_RESOURCES: &[(&str, &str)] = &[
    ("bucketName", "AWS::S3::Bucket"),
    ("userName", "AWS::IAM::User"),
    ("roleName", "AWS::IAM::Role"),
    ("groupName", "AWS::IAM::Group"),
    ("policyArn", "AWS::IAM::Policy"),
    ("instanceProfileName", "AWS::IAM::InstanceProfile"),
    ("functionName", "AWS::Lambda::Function"),
    ("groupId", "AWS::EC2::SecurityGroup"),
    ("instanceId", "AWS::EC2::Instance"),
    ("imageId", "AWS::EC2::Image"),
    ("volumeId", "AWS::EC2::Volume"),
    ("snapshotId", "AWS::EC2::Snapshot"),
    ("vpcId", "AWS::EC2::VPC"),
    ("subnetId", "AWS::EC2::Subnet"),
    ("secretId", "AWS::SecretsManager::Secret"),
    ("trailName", "AWS::CloudTrail::Trail"),
    ("dBInstanceIdentifier", "AWS::RDS::DBInstance"),
    ("dBClusterIdentifier", "AWS::RDS::DBCluster"),
    ("tableName", "AWS::DynamoDB::Table"),
    ("keyId", "AWS::KMS::Key"),
    ("stackName", "AWS::CloudFormation::Stack"),
    ("logGroupName", "AWS::Logs::LogGroup"),
    ("hostedZoneId", "AWS::Route53::HostedZone"),
    ("detectorId", "AWS::GuardDuty::Detector"),
    ("repositoryName", "AWS::ECR::Repository"),
    ("queueUrl", "AWS::SQS::Queue"),
    ("topicArn", "AWS::SNS::Topic"),
    ("resourceArn", ""),
    ("clusterName", ""),
];

/// `name`/`names` mean a resource only for some services.
fn named_resource_type(source: &str) -> Option<&'static str> {
    match source {
        "ssm.amazonaws.com" => Some("AWS::SSM::Parameter"),
        "cloudtrail.amazonaws.com" => Some("AWS::CloudTrail::Trail"),
        "secretsmanager.amazonaws.com" => Some("AWS::SecretsManager::Secret"),
        _ => None,
    }
}

/// The columns every CloudTrail class has: every source's (`Head`) and CloudTrail's own.
struct Common {
    h: Head,
    c: Base,
}

impl Common {
    fn resolve(w: &BatchWriter) -> Result<Common, WriterError> {
        Ok(Common { h: Head::resolve(w)?, c: Base::resolve(w)? })
    }
}

struct Writers {
    api: (ClassWriter, Common, ApiExtra),
    auth: (ClassWriter, Common, Target, AuthExtra),
    account: (ClassWriter, Common, Target, AcctExtra),
    /// CloudTrail Insights records, which are findings about a call's rate, not calls.
    insight: (ClassWriter, Insights),
}

/// The CloudTrail normalizer.
pub struct CloudTrail {
    w: Writers,
    agents: Arc<Registry>,
    scratch: Scratch,
    tags: Vec<String>,
    mapped: Consumption,
    buf: Vec<u8>,
    unmapped: Vec<u8>,
}

impl CloudTrail {
    /// With the shipped agent registry.
    pub fn new() -> Result<CloudTrail, WriterError> {
        CloudTrail::with_agents(Arc::new(Registry::builtin()))
    }

    /// With an agent registry (the shipped agents and the config's `[[agents]]`).
    pub fn with_agents(agents: Arc<Registry>) -> Result<CloudTrail, WriterError> {
        let api = ClassWriter::new("api_activity")?;
        let auth = ClassWriter::new("authentication")?;
        let account = ClassWriter::new("account_change")?;
        let api_cols = (Common::resolve(&api.writer)?, ApiExtra::resolve(&api.writer)?);
        let auth_cols = (Common::resolve(&auth.writer)?, Target::resolve(&auth.writer)?, AuthExtra::resolve(&auth.writer)?);
        let account_cols = (Common::resolve(&account.writer)?, Target::resolve(&account.writer)?, AcctExtra::resolve(&account.writer)?);
        let insight = ClassWriter::new("detection_finding")?;
        let insight_cols = Insights::resolve(&insight.writer)?;
        let w = Writers {
            insight: (insight, insight_cols),
            api: (api, api_cols.0, api_cols.1),
            auth: (auth, auth_cols.0, auth_cols.1, auth_cols.2),
            account: (account, account_cols.0, account_cols.1, account_cols.2),
        };
        let scratch = agents.scratch();
        Ok(CloudTrail { w, agents, scratch, tags: Vec::new(), mapped: Consumption::new(), buf: Vec::with_capacity(4096), unmapped: Vec::with_capacity(4096) })
    }
}

/// The top-level fields of a record, found in one pass over its keys (a record has ~20; looking
/// each one up by name, as the mapping does ~30 times, costs more than this pass).
struct Top<'v> {
    raw: &'v BorrowedValue<'v>,
    fields: [Option<&'v BorrowedValue<'v>>; TOP_KEYS.len()],
    /// The slot of each member in iteration order (`NONE` for keys the mapping does not
    /// read), so `unmapped` is written without looking the keys up again.
    order: [u8; MAX_ORDERED],
    members: usize,
}

const NONE: u8 = u8::MAX;
const MAX_ORDERED: usize = 64;

const TOP_KEYS: [&str; 23] = [
    "eventVersion",
    "userIdentity",
    "eventTime",
    "eventSource",
    "eventName",
    "awsRegion",
    "sourceIPAddress",
    "userAgent",
    "requestParameters",
    "responseElements",
    "requestID",
    "eventID",
    "eventType",
    "recipientAccountId",
    "errorCode",
    "errorMessage",
    "eventCategory",
    "apiVersion",
    "resources",
    "tlsDetails",
    "additionalEventData",
    "insightDetails",
    "readOnly",
];

/// The slot of a top-level key in `TOP_KEYS` (a `match`, which compiles to a decision tree).
fn top_slot(key: &str) -> Option<usize> {
    match key {
        "eventVersion" => Some(0),
        "userIdentity" => Some(1),
        "eventTime" => Some(2),
        "eventSource" => Some(3),
        "eventName" => Some(4),
        "awsRegion" => Some(5),
        "sourceIPAddress" => Some(6),
        "userAgent" => Some(7),
        "requestParameters" => Some(8),
        "responseElements" => Some(9),
        "requestID" => Some(10),
        "eventID" => Some(11),
        "eventType" => Some(12),
        "recipientAccountId" => Some(13),
        "errorCode" => Some(14),
        "errorMessage" => Some(15),
        "eventCategory" => Some(16),
        "apiVersion" => Some(17),
        "resources" => Some(18),
        "tlsDetails" => Some(19),
        "additionalEventData" => Some(20),
        "insightDetails" => Some(21),
        "readOnly" => Some(22),
        _ => None,
    }
}

impl<'v> Top<'v> {
    fn index(raw: &'v BorrowedValue<'v>) -> Top<'v> {
        let mut fields = [None; TOP_KEYS.len()];
        let mut order = [NONE; MAX_ORDERED];
        let mut members = 0;
        if let BorrowedValue::Object(o) = raw {
            for (n, (k, v)) in o.iter().enumerate() {
                let slot = top_slot(k);
                if let Some(i) = slot {
                    fields[i] = Some(v);
                }
                if n < MAX_ORDERED {
                    order[n] = slot.map_or(NONE, |i| i as u8);
                }
                members = n + 1;
            }
        }
        Top { raw, fields, order, members }
    }

    /// A top-level field; `key` must be one of `TOP_KEYS` (checked by a test).
    fn get(&self, key: &str) -> Option<&'v BorrowedValue<'v>> {
        top_slot(key).and_then(|i| self.fields[i])
    }

    fn path(&self, path: &[&str]) -> Option<&'v BorrowedValue<'v>> {
        get_path(self.get(path[0])?, &path[1..])
    }
}

/// What the mapping consumes of a record: the tree of consumed paths, and per top-level slot
/// whether it is consumed whole, in part, or not at all (so `unmapped` needs no lookups).
struct Consumption {
    tree: Mapped,
    /// 0: not consumed, 1: whole, 2: in part.
    slot: [u8; TOP_KEYS.len()],
}

impl Consumption {
    fn new() -> Consumption {
        let tree = Mapped::new(MAPPED);
        let slot = std::array::from_fn(|i| match tree.find(TOP_KEYS[i]) {
            Some(None) => 1,
            Some(Some(_)) => 2,
            None => 0,
        });
        Consumption { tree, slot }
    }
}

/// The fields of a record every class uses, looked up once.
struct Rec<'v> {
    v: &'v Top<'v>,
    name: &'v str,
    source: &'v str,
    time: i64,
    time_text: &'v str,
    region: Option<&'v str>,
    error_code: Option<&'v str>,
    error_message: Option<&'v str>,
    insight: Option<&'v BorrowedValue<'v>>,
}

impl Normalizer for CloudTrail {
    fn kind(&self) -> &'static str {
        "cloudtrail"
    }

    fn append(&mut self, v: &BorrowedValue<'_>, _origin: &Origin) -> Result<(), String> {
        if !matches!(v, BorrowedValue::Object(_)) {
            return Err("not a CloudTrail record: expected a JSON object".into());
        }
        let top = Top::index(v);
        let v = &top;
        // CloudTrail Insights events name the API call they are about inside `insightDetails`.
        let insight = v.get("insightDetails").filter(|i| !is_null(i));
        let field = |key: &str| str_of(v.get(key)).or_else(|| insight.and_then(|i| str_of(get(i, key)))).filter(|s| !s.is_empty());
        let name = field("eventName").ok_or("not a CloudTrail record: no eventName")?;
        let time_text = str_of(v.get("eventTime")).ok_or("not a CloudTrail record: no eventTime")?;
        let time = parse_time_ms(time_text).ok_or_else(|| format!("bad eventTime: `{time_text}` is not an RFC 3339 time"))?;
        let time = super::time::admit(time)?;
        let rec = Rec {
            v,
            name,
            source: field("eventSource").unwrap_or(""),
            insight,
            time,
            time_text,
            region: str_of(v.get("awsRegion")),
            error_code: str_of(v.get("errorCode")).filter(|s| !s.is_empty()),
            error_message: str_of(v.get("errorMessage")),
        };
        if let Some(details) = rec.insight {
            let (cw, cols) = &mut self.w.insight;
            cols.write(&mut cw.writer, cw.class, top.raw, details, time, &mut self.buf);
            return Ok(());
        }
        let route = if let Some(a) = auth_activity(rec.source, rec.name) {
            Route::Auth(a)
        } else if let Some(a) = account_activity(rec.source, rec.name) {
            Route::Account(a)
        } else {
            Route::Api(api_activity(rec.name, bool_of(v.get("readOnly"))))
        };
        let (buf, unmapped) = ((&mut self.buf, &self.mapped), &mut self.unmapped);
        let agent = find_agent(&self.agents, &mut self.scratch, &mut self.tags, v);
        match route {
            Route::Api(a) => {
                let (cw, base, extra) = &mut self.w.api;
                write_base(&mut cw.writer, cw.class, base, &rec, a, buf, unmapped);
                crate::fault_panic(rec.name);
                write_agent(&mut cw.writer, base, agent);
                write_resources(&mut cw.writer, extra, &rec);
                cw.writer.end_row();
            }
            Route::Auth(a) => {
                let (cw, base, target, extra) = &mut self.w.auth;
                write_base(&mut cw.writer, cw.class, base, &rec, a, buf, unmapped);
                write_agent(&mut cw.writer, base, agent);
                write_identity_as_target(&mut cw.writer, target, v);
                let ad = v.get("additionalEventData");
                if let Some(mfa) = ad.and_then(|a| bool_of(get(a, "MFAUsed"))) {
                    cw.writer.bool(extra.is_mfa, mfa);
                }
                if let Some(to) = ad.and_then(|a| str_of(get(a, "LoginTo"))) {
                    cw.writer.str(extra.svc_name, to);
                }
                // The service authenticated to (OCSF wants it or the destination endpoint).
                cw.writer.str(extra.service, if rec.source.is_empty() { "signin.amazonaws.com" } else { rec.source });
                cw.writer.end_row();
            }
            Route::Account(a) => {
                let (cw, base, target, extra) = &mut self.w.account;
                write_base(&mut cw.writer, cw.class, base, &rec, a, buf, unmapped);
                write_agent(&mut cw.writer, base, agent);
                write_changed_account(&mut cw.writer, target, extra, v);
                cw.writer.end_row();
            }
        }
        Ok(())
    }

    fn buffered_rows(&self) -> usize {
        self.w.api.0.writer.rows() + self.w.auth.0.writer.rows() + self.w.account.0.writer.rows() + self.w.insight.0.writer.rows()
    }

    fn discard_partial(&mut self) {
        for w in [&mut self.w.api.0, &mut self.w.auth.0, &mut self.w.account.0, &mut self.w.insight.0] {
            w.writer.discard_row();
        }
    }
    fn take_batches(&mut self) -> Result<Vec<OcsfBatch>, WriterError> {
        let mut out = Vec::new();
        self.w.api.0.take(&mut out)?;
        self.w.auth.0.take(&mut out)?;
        self.w.account.0.take(&mut out)?;
        self.w.insight.0.take(&mut out)?;
        Ok(out)
    }
}

fn write_base(w: &mut BatchWriter, class: &ClassDef, cols: &Common, r: &Rec<'_>, activity: i32, (buf, mapped): (&mut Vec<u8>, &Consumption), unmapped: &mut Vec<u8>) {
    let v = r.v;
    let (h, c) = (&cols.h, &cols.c);
    // For Other (99) OCSF wants the source's own word: the event name.
    let activity_name = match activity {
        99 => r.name,
        _ => class.activity_name(activity).unwrap_or("Other"),
    };
    h.classify(w, class, activity, Some(activity_name));
    h.severity(w, 1);
    h.time(w, r.time);

    // Outcome: an errorCode, or a console sign-in answered "Failure".
    let console_failed = str_of(v.path(&["responseElements", "ConsoleLogin"])) == Some("Failure");
    if r.error_code.is_some() || console_failed {
        w.i32(c.status_id, 2);
        w.str(c.status, "Failure");
    } else {
        w.i32(c.status_id, 1);
        w.str(c.status, "Success");
    }
    if let Some(code) = r.error_code {
        w.str(c.status_code, code);
        w.str(c.api_response_error, code);
    }
    if let Some(msg) = r.error_message {
        w.str(c.status_detail, msg);
        w.str(c.api_response_message, msg);
    }

    // Metadata.
    if let Some(id) = str_of(v.get("eventID")) {
        w.str(h.md_uid, id);
    }
    h.product(w, "CloudTrail", "AWS", &["cloud"]);
    w.str(h.md_log_provider, "CloudTrail");
    if let Some(cat) = str_of(v.get("eventCategory")) {
        w.str(h.md_feature, cat);
        w.str(h.md_log_name, cat);
    }
    if let Some(ver) = str_of(v.get("eventVersion")) {
        // The record format version; the ocsf-examples mappings put it in product.version.
        w.str(h.md_log_version, ver);
        w.str(h.md_product_version, ver);
    }
    if let Some(t) = str_of(v.get("eventType")) {
        w.str(h.md_event_code, t);
    }
    w.str(h.md_original_time, r.time_text);

    // Cloud.
    let account = str_of(v.get("recipientAccountId")).or_else(|| str_of(v.path(&["userIdentity", "accountId"])));
    h.aws(w, r.region, account);

    // Actor. Service events (no user identity, or one without a principal) are acted by the
    // service: `actor.invoked_by` names it, so OCSF's required actor is never empty.
    let user_name = write_actor(w, c, v);
    let has_principal = v.get("userIdentity").is_some_and(|id| get(id, "arn").is_some() || get(id, "principalId").is_some() || get(id, "invokedBy").is_some() || get(id, "type").is_some());
    if !has_principal && !r.source.is_empty() {
        w.str(c.invoked_by, r.source);
    }

    // API.
    w.str(c.api_operation, r.name);
    if !r.source.is_empty() {
        w.str(c.api_service, r.source);
    }
    if let Some(ver) = str_of(v.get("apiVersion")) {
        w.str(c.api_version, ver);
    }
    let request_id = str_of(v.get("requestID")).filter(|s| !s.is_empty());
    if let Some(id) = request_id {
        w.str(c.api_request_uid, id);
        if let Some(d) = v.get("requestParameters").filter(|d| !is_null(d)) {
            w.str(c.api_request_data, encode(d, buf));
        }
    }
    if let Some(d) = v.get("responseElements").filter(|d| !is_null(d)) {
        w.str(c.api_response_data, encode(d, buf));
    }

    // Source endpoint and HTTP request.
    let mut ip_seen = None;
    let mut domain_seen = None;
    if let Some(src) = str_of(v.get("sourceIPAddress")) {
        match canonical_ip(src) {
            Some(ip) => {
                w.str(c.src_ip, &ip);
                ip_seen = Some(ip);
            }
            None if src.contains('.') && !src.contains(' ') => {
                w.str(c.src_domain, src);
                domain_seen = Some(src);
            }
            None => w.str(c.src_name, src),
        }
    } else if !r.source.is_empty() {
        // Service events carry no source address: the call comes from the service itself.
        w.str(c.src_svc, r.source);
    }
    if let Some(ua) = str_of(v.get("userAgent")) {
        w.str(c.user_agent, ua);
    }
    if let Some(h) = str_of(v.path(&["tlsDetails", "clientProvidedHostHeader"])) {
        // OCSF's url needs `url_string` or `path`; CloudTrail records neither, only the host
        // the client called over TLS. The URL written is that endpoint's origin, never a
        // made-up path (docs/mappings/cloudtrail.md).
        w.str(c.host_header, h);
        unmapped.clear();
        unmapped.extend_from_slice(b"https://");
        unmapped.extend_from_slice(h.as_bytes());
        w.str(c.url_string, std::str::from_utf8(unmapped).unwrap_or_default());
    }

    // Observables: the values analysts pivot on.
    if let Some(ip) = &ip_seen {
        h.observable(w, "src_endpoint.ip", obs::IP, ip);
    }
    if let Some(d) = domain_seen {
        h.observable(w, "src_endpoint.domain", obs::HOSTNAME, d);
    }
    if let Some(name) = user_name {
        h.observable(w, "actor.user.name", obs::USER_NAME, name);
    }

    unmapped.clear();
    // Fields the mapping could not use after all stay unmapped: `requestParameters` without a
    // `requestID` (OCSF requires `api.request.uid` beside `api.request.data`), and `resources`
    // that is not a list.
    let keep_request = request_id.is_none();
    let keep_resources = v.get("resources").is_some_and(|r| !matches!(r, BorrowedValue::Array(_)));
    // An empty `errorCode` is not an error, yet not the same as none: kept as it came.
    let keep_error = r.error_code.is_none();
    let consumed = |i: usize, k: &str| {
        // Members the mapping does not read (most of what is unmapped) need no lookup.
        let slot = if v.members <= MAX_ORDERED { v.order[i] } else { top_slot(k).map_or(NONE, |s| s as u8) };
        if slot == NONE || keep_request && k == "requestParameters" || keep_resources && k == "resources" || keep_error && k == "errorCode" {
            return Consumed::Nothing;
        }
        match mapped.slot[slot as usize] {
            1 => Consumed::Whole,
            2 => match mapped.tree.find(k) {
                Some(Some(sub)) => Consumed::Part(sub),
                _ => Consumed::Nothing,
            },
            _ => Consumed::Nothing,
        }
    };
    if write_members_except(v.raw, consumed, unmapped) {
        w.str(h.unmapped, std::str::from_utf8(unmapped).unwrap_or_default());
    }
}

/// The agent a record's caller is, by the registry: user agent, role, session name, source
/// identity.
fn find_agent<'r>(agents: &'r Registry, scratch: &mut Scratch, tags: &mut Vec<String>, v: &Top<'_>) -> Option<&'r AgentRule> {
    let id = v.get("userIdentity");
    let arn = id.and_then(|i| str_of(get(i, "arn")));
    // Session tags are on the STS request that starts the session (AssumeRole*, TagSession).
    tags.clear();
    if str_of(v.get("eventSource")) == Some("sts.amazonaws.com")
        && let Some(BorrowedValue::Array(items)) = v.path(&["requestParameters", "tags"])
    {
        tags.extend(items.iter().filter_map(|t| Some(format!("{}={}", str_of(get(t, "key"))?, str_of(get(t, "value"))?))));
    }
    let caller = Caller {
        user_agent: str_of(v.get("userAgent")),
        role_arn: id.and_then(|i| str_of(get_path(i, &["sessionContext", "sessionIssuer", "arn"]))).or(arn.filter(|a| a.contains(":role/"))),
        session_name: arn.filter(|a| a.contains(":assumed-role/")).and_then(|a| a.rsplit('/').next()),
        source_identity: id.and_then(|i| str_of(get_path(i, &["sessionContext", "sourceIdentity"])).or_else(|| str_of(get(i, "sourceIdentity")))),
        tags,
    };
    agents.find(&caller, scratch)
}

/// A recognized agent is the actor's app, and a label (`agent:<name>`).
fn write_agent(w: &mut BatchWriter, cols: &Common, agent: Option<&AgentRule>) {
    let Some(a) = agent else { return };
    let (h, c) = (&cols.h, &cols.c);
    w.str(c.app_name, &a.name);
    w.str(c.app_uid, a.uid.as_deref().unwrap_or(&a.name));
    w.push_str(h.md_labels, &format!("agent:{}", a.name));
}

/// Who a record says acted, from `userIdentity` (and, for IAM Identity Center sign-ins,
/// `onBehalfOf` and `additionalEventData.UserName`).
struct Identity<'v> {
    kind: Option<&'v str>,
    arn: Option<&'v str>,
    principal: Option<&'v str>,
    name: Option<&'v str>,
    account: Option<&'v str>,
    invoked_by: Option<&'v str>,
}

impl<'v> Identity<'v> {
    fn of(v: &Top<'v>) -> Option<Identity<'v>> {
        let id = v.get("userIdentity").filter(|id| !is_null(id))?;
        let arn = str_of(get(id, "arn"));
        // For an assumed role the useful name is the role session name (agents and tools set it).
        let session_name = arn.filter(|a| a.contains(":assumed-role/")).and_then(|a| a.rsplit('/').next());
        Some(Identity {
            kind: str_of(get(id, "type")),
            arn,
            principal: str_of(get(id, "principalId")).or_else(|| str_of(get_path(id, &["onBehalfOf", "userId"]))),
            name: str_of(get(id, "userName")).or(session_name).or_else(|| str_of(v.path(&["additionalEventData", "UserName"]))),
            account: str_of(get(id, "accountId")),
            invoked_by: str_of(get(id, "invokedBy")),
        })
    }

    fn write(&self, w: &mut BatchWriter, kind: StrCol, type_id: I32Col, uid: StrCol, uid_alt: StrCol, name: StrCol, account: StrCol) {
        if let Some(k) = self.kind {
            w.str(kind, k);
            w.i32(type_id, user_type_id(k));
        }
        // OCSF's user needs a uid, name or account. An identity CloudTrail gives none of them
        // (an AWS service, an `Unknown` caller) is named by its principal id, else by the service
        // that invoked the call, else by its type (docs/mappings/cloudtrail.md).
        let (mut arn, mut principal, mut who) = (self.arn, self.principal, self.name);
        if arn.is_none() && who.is_none() && self.account.is_none() {
            match principal.take() {
                Some(p) => arn = Some(p),
                None => who = self.invoked_by.or(self.kind),
            }
        }
        for (col, val) in [(uid, arn), (uid_alt, principal), (name, who), (account, self.account)] {
            if let Some(x) = val {
                w.str(col, x);
            }
        }
    }
}

/// `userIdentity` -> `actor`; returns the user name written, if any.
fn write_actor<'v>(w: &mut BatchWriter, c: &Base, v: &Top<'v>) -> Option<&'v str> {
    let who = Identity::of(v)?;
    who.write(w, c.user_type, c.user_type_id, c.user_uid, c.user_uid_alt, c.user_name, c.user_account);
    let id = v.get("userIdentity")?;
    if let Some(k) = str_of(get(id, "accessKeyId")).filter(|k| !k.is_empty()).or_else(|| str_of(get(id, "credentialId"))) {
        w.str(c.session_credential, k);
    }
    if let Some(by) = str_of(get(id, "invokedBy")) {
        w.str(c.invoked_by, by);
    }
    if let Some(idp) = str_of(get(id, "identityProvider")) {
        w.str(c.idp_name, idp);
    }
    if let Some(store) = str_of(get_path(id, &["onBehalfOf", "identityStoreArn"])) {
        w.str(c.idp_uid, store);
    }
    if let Some(ctx) = get(id, "sessionContext") {
        if let Some(issuer) = str_of(get_path(ctx, &["sessionIssuer", "arn"])) {
            w.str(c.session_issuer, issuer);
        }
        if let Some(t) = str_of(get_path(ctx, &["attributes", "creationDate"])).and_then(parse_time_ms) {
            w.i64(c.session_created, t);
            w.ts(c.session_created_dt, t);
        }
        if let Some(mfa) = bool_of(get_path(ctx, &["attributes", "mfaAuthenticated"])) {
            w.bool(c.session_mfa, mfa);
        }
    }
    who.name
}

fn user_type_id(kind: &str) -> i32 {
    match kind {
        "Root" => 2,
        "IAMUser" | "IdentityCenterUser" | "SAMLUser" | "WebIdentityUser" | "Directory" => 1,
        "AWSService" => 4,
        _ => 99,
    }
}

/// Authentication: the user who signs in is the identity of the record.
fn write_identity_as_target(w: &mut BatchWriter, t: &Target, v: &Top<'_>) {
    match Identity::of(v) {
        Some(who) => who.write(w, t.kind, t.type_id, t.uid, t.uid_alt, t.name, t.account),
        None => {
            // OCSF requires the user (with a uid, name or account); a record that does not say
            // who signed in says so.
            w.str(t.kind, "Unknown");
            w.i32(t.type_id, 0);
            w.str(t.name, "Unknown");
        }
    }
}

/// Account Change: the user or role acted on, from the request and the response.
fn write_changed_account(w: &mut BatchWriter, t: &Target, e: &AcctExtra, v: &Top<'_>) {
    let req = v.get("requestParameters");
    let resp = v.get("responseElements");
    let (name, kind) = match (req.and_then(|r| str_of(get(r, "userName"))), req.and_then(|r| str_of(get(r, "roleName")))) {
        (Some(u), _) => (Some(u), "User"),
        (None, Some(r)) => (Some(r), "Role"),
        _ => (None, ""),
    };
    if let Some(n) = name {
        w.str(t.name, n);
        w.str(t.kind, kind);
        w.i32(t.type_id, if kind == "User" { 1 } else { 99 });
    } else if let Some(id) = v.get("userIdentity") {
        // ChangePassword and kin act on the caller's own account.
        if let Some(n) = str_of(get(id, "userName")) {
            w.str(t.name, n);
        }
    }
    let created = resp.and_then(|r| get(r, "user").or_else(|| get(r, "role")));
    if let Some(obj) = created {
        if let Some(arn) = str_of(get(obj, "arn")) {
            w.str(t.uid, arn);
        }
        if let Some(id) = str_of(get(obj, "userId")).or_else(|| str_of(get(obj, "roleId"))) {
            w.str(t.uid_alt, id);
        }
    }
    if let Some(a) = str_of(v.get("recipientAccountId")) {
        w.str(t.account, a);
    }
    if let Some(p) = req.and_then(|r| str_of(get(r, "policyArn"))) {
        w.str(e.policy_uid, p);
        if let Some(n) = p.rsplit('/').next() {
            w.str(e.policy_name, n);
        }
    } else if let Some(n) = req.and_then(|r| str_of(get(r, "policyName"))) {
        w.str(e.policy_name, n);
    }
}

/// Resources from the record's `resources` array and from well-known request parameters.
fn write_resources(w: &mut BatchWriter, e: &ApiExtra, r: &Rec<'_>) {
    if let Some(BorrowedValue::Array(items)) = r.v.get("resources") {
        for item in items.iter() {
            let arn = str_of(get(item, "ARN"));
            if arn.is_none() {
                continue;
            }
            w.begin_item(e.resources);
            if let Some(a) = arn {
                w.str(e.res_uid, a);
            }
            if let Some(t) = str_of(get(item, "type")) {
                w.str(e.res_type, t);
            }
            if let Some(a) = str_of(get(item, "accountId")) {
                w.str(e.res_account, a);
            }
            w.end_item(e.resources);
        }
    }
    let one = |w: &mut BatchWriter, value: &str, kind: &str| {
        w.begin_item(e.resources);
        if value.starts_with("arn:") {
            w.str(e.res_uid, value);
        } else {
            w.str(e.res_name, value);
        }
        if !kind.is_empty() {
            w.str(e.res_type, kind);
        }
        w.end_item(e.resources);
    };
    let Some(BorrowedValue::Object(req_obj)) = r.v.get("requestParameters") else { return };
    let req = r.v.get("requestParameters").expect("matched above");
    // Walk the (few) parameters of the request rather than look up every known name.
    for (key, value) in req_obj.iter() {
        let Some(kind) = param_resource_type(key) else { continue };
        match value {
            BorrowedValue::String(s) if !s.is_empty() => one(w, s, kind),
            BorrowedValue::Array(items) => items.iter().filter_map(|i| str_of(Some(i))).for_each(|s| one(w, s, kind)),
            _ => {}
        }
    }
    if let Some(kind) = named_resource_type(r.source) {
        for key in ["name", "names"] {
            match get(req, key) {
                Some(BorrowedValue::String(s)) => one(w, s, kind),
                Some(BorrowedValue::Array(items)) => items.iter().filter_map(|i| str_of(Some(i))).for_each(|s| one(w, s, kind)),
                _ => {}
            }
        }
    }
    // EC2 instance sets, in the request (Stop/Terminate) and the response (RunInstances).
    for root in ["requestParameters", "responseElements"] {
        if let Some(BorrowedValue::Array(items)) = r.v.path(&[root, "instancesSet", "items"]) {
            for i in items.iter() {
                if let Some(id) = str_of(get(i, "instanceId")) {
                    one(w, id, "AWS::EC2::Instance");
                }
            }
        }
    }
}

/// An IP address in canonical form. Anonymised logs (Stratus) write octets with leading zeros
/// (`075.050.255.67`), which Rust, like most parsers, rejects; they are read as decimal.
pub(crate) fn canonical_ip(s: &str) -> Option<String> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip.to_string());
    }
    let octets: Vec<&str> = s.split('.').collect();
    if octets.len() == 4 && octets.iter().all(|o| (1..=3).contains(&o.len()) && o.bytes().all(|b| b.is_ascii_digit())) {
        let nums: Option<Vec<u8>> = octets.iter().map(|o| o.parse::<u8>().ok()).collect();
        return nums.map(|n| format!("{}.{}.{}.{}", n[0], n[1], n[2], n[3]));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbs_pick_activities() {
        assert_eq!(api_activity("Frobnicate", Some(true)), 2);
        assert_eq!(api_activity("Frobnicate", Some(false)), 99);
        assert_eq!(auth_activity("signin.amazonaws.com", "ConsoleLogin"), Some(1));
        assert_eq!(auth_activity("sts.amazonaws.com", "AssumeRole"), None);
        assert_eq!(account_activity("iam.amazonaws.com", "CreateUser"), Some(1));
        assert_eq!(account_activity("iam.amazonaws.com", "ListUsers"), None);
    }

    #[test]
    fn top_slots_match_top_keys() {
        for (i, k) in TOP_KEYS.iter().enumerate() {
            assert_eq!(top_slot(k), Some(i));
        }
    }

    #[test]
    fn every_field_the_mapping_reads_is_indexed() {
        let src = include_str!("cloudtrail.rs");
        for pat in ["v.get(\"", "r.v.get(\"", "v.path(&[\"", "r.v.path(&[\""] {
            for (i, _) in src.match_indices(pat) {
                let key: String = src[i + pat.len()..].chars().take_while(|c| *c != '"').collect();
                assert!(TOP_KEYS.contains(&key.as_str()), "{key} is read but not in TOP_KEYS");
            }
        }
    }

    #[test]
    fn ips_are_canonical() {
        assert_eq!(canonical_ip("075.050.255.67").as_deref(), Some("75.50.255.67"));
        assert_eq!(canonical_ip("2001:db8::1").as_deref(), Some("2001:db8::1"));
        assert_eq!(canonical_ip("ec2.amazonaws.com"), None);
        assert_eq!(canonical_ip("300.1.1.1"), None);
    }
}
