//! AWS Security Hub: BatchImportFindings through the AWS SDK for Rust (the standard credential
//! chain unless keys are configured; `endpoint_url` for VPC endpoints and tests). At most 100
//! findings and 6 MB a call, 240 KB a finding (asff.rs trims evidences), 10 calls a second
//! with bursts of 30 (Security Hub's quota). The finding uid is the ASFF `Id`, so importing a
//! finding again updates it; `UpdatedAt` is the finding's last hit, so an older version
//! replayed does not overwrite a newer one.
//!
//! Throttling, 5xx and network errors are retried (the SDK's own retries are off: one policy,
//! ours); `FailedFindings` are retried when their error code says throttling or an internal
//! error, dead-lettered otherwise; a call refused as a whole (invalid input, access denied)
//! dead-letters its findings with the service's message.

use std::time::Duration;

use aws_config::{BehaviorVersion, Region};
use aws_sdk_securityhub::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_securityhub::types::{AwsSecurityFinding, FindingProviderFields, FindingProviderSeverity, Partition, RecordState, Resource, Severity, SeverityLabel};
use serde_json::Value;

use super::asff;
use super::config::SecurityHubConfig;
use super::{Defaults, Encoded, Item, Outcome};

pub const DEFAULTS: Defaults = Defaults { max_batch: 100, max_batch_bytes: 6_000_000, rate_per_sec: Some(10.0), burst: 30 };

pub struct SecurityHub {
    client: aws_sdk_securityhub::Client,
    target: asff::Target,
}

impl SecurityHub {
    pub async fn new(c: &SecurityHubConfig, timeout: Duration) -> Result<SecurityHub, String> {
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(c.region.clone()))
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .timeout_config(aws_config::timeout::TimeoutConfig::builder().operation_timeout(timeout).build());
        if let Some(url) = &c.endpoint_url {
            super::http::url("endpoint_url", url, "")?;
            loader = loader.endpoint_url(url);
        }
        if let (Some(id), Some(secret)) = (&c.access_key_id, &c.secret_access_key) {
            let creds = aws_sdk_securityhub::config::Credentials::new(id.resolve("access_key_id")?, secret.resolve("secret_access_key")?, None, None, "ocelot-config");
            loader = loader.credentials_provider(creds);
        }
        let sdk = loader.load().await;
        Ok(SecurityHub { client: aws_sdk_securityhub::Client::new(&sdk), target: asff::Target::new(&c.account_id, &c.region, c.product_arn.as_deref()) })
    }

    /// The ASFF JSON: what is sent (through the SDK's types) and what its size is counted on.
    pub fn encode(&self, item: &Item) -> Result<Vec<u8>, String> {
        let a = asff::from_ocsf(&item.ocsf, &self.target)?;
        serde_json::to_vec(&a).map_err(|e| e.to_string())
    }

    pub async fn send(&self, batch: &[Encoded]) -> Vec<Outcome> {
        // The JSON `encode` made (and counted the size of) into the SDK's types.
        let findings = batch.iter().map(|e| sdk_finding(&serde_json::from_slice(&e.bytes).unwrap_or_default())).collect();
        match self.client.batch_import_findings().set_findings(Some(findings)).send().await {
            Ok(out) => {
                let failed = out.failed_findings();
                batch
                    .iter()
                    .map(|e| match failed.iter().find(|f| f.id() == Some(e.item.uid.as_str())) {
                        None => Outcome::Sent,
                        Some(f) => {
                            let code = f.error_code().unwrap_or_default();
                            let why = format!("Security Hub FailedFindings {code}: {}", f.error_message().unwrap_or_default());
                            if code.contains("Throttl") || code.contains("Internal") || code.contains("LimitExceeded") || code.contains("Unavailable") {
                                Outcome::retry(why)
                            } else {
                                Outcome::Reject(why)
                            }
                        }
                    })
                    .collect()
            }
            Err(e) => vec![by_error(&e); batch.len()],
        }
    }
}

fn by_error<E: ProvideErrorMetadata + std::error::Error + 'static, R: std::fmt::Debug>(e: &SdkError<E, R>) -> Outcome {
    let text = format!("Security Hub: {}", DisplayErrorContext(e));
    match e {
        SdkError::ServiceError(s) => {
            let code = s.err().code().unwrap_or_default();
            if code.contains("Throttl") || code.contains("LimitExceeded") || code.contains("Internal") || code.contains("Unavailable") {
                Outcome::retry(text)
            } else {
                Outcome::Reject(text)
            }
        }
        // Not sent, timed out, no answer, an answer that could not be read: try again.
        _ => Outcome::retry(text),
    }
}

/// The SDK's finding from our ASFF JSON (asff.rs makes exactly these fields).
fn sdk_finding(a: &Value) -> AwsSecurityFinding {
    let s = |k: &str| a.get(k).and_then(Value::as_str).map(str::to_string);
    let strs = |v: &Value| v.as_array().into_iter().flatten().filter_map(Value::as_str).map(str::to_string).collect::<Vec<_>>();
    let severity = |v: &Value| Severity::builder().label(SeverityLabel::from(v["Label"].as_str().unwrap_or("INFORMATIONAL"))).set_original(v["Original"].as_str().map(str::to_string)).build();
    let mut resources = Vec::new();
    for r in a["Resources"].as_array().into_iter().flatten() {
        let res = Resource::builder()
            .r#type(r["Type"].as_str().unwrap_or("Other"))
            .id(r["Id"].as_str().unwrap_or_default())
            .partition(Partition::from(r["Partition"].as_str().unwrap_or("aws")))
            .set_region(r["Region"].as_str().map(str::to_string))
            .build();
        resources.push(res);
    }
    let fields = a["ProductFields"].as_object().map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string())).collect());
    let fp = &a["FindingProviderFields"];
    let provider_severity = FindingProviderSeverity::builder()
        .label(SeverityLabel::from(fp["Severity"]["Label"].as_str().unwrap_or("INFORMATIONAL")))
        .set_original(fp["Severity"]["Original"].as_str().map(str::to_string))
        .build();
    let provider = FindingProviderFields::builder().severity(provider_severity).set_types(Some(strs(&fp["Types"]))).set_criticality(fp["Criticality"].as_i64().map(|c| c as i32)).build();
    AwsSecurityFinding::builder()
        .set_schema_version(s("SchemaVersion"))
        .set_id(s("Id"))
        .set_product_arn(s("ProductArn"))
        .set_generator_id(s("GeneratorId"))
        .set_aws_account_id(s("AwsAccountId"))
        .set_types(Some(strs(&a["Types"])))
        .set_created_at(s("CreatedAt"))
        .set_updated_at(s("UpdatedAt"))
        .set_first_observed_at(s("FirstObservedAt"))
        .set_last_observed_at(s("LastObservedAt"))
        .severity(severity(&a["Severity"]))
        .set_criticality(a["Criticality"].as_i64().map(|c| c as i32))
        .finding_provider_fields(provider)
        .set_title(s("Title"))
        .set_description(s("Description"))
        .set_resources(Some(resources))
        .set_product_fields(fields)
        .set_product_name(s("ProductName"))
        .set_company_name(s("CompanyName"))
        .set_region(s("Region"))
        .record_state(RecordState::Active)
        .set_source_url(s("SourceUrl"))
        .build()
}
