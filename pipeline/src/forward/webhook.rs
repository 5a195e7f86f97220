//! A generic webhook: a JSON POST per finding (the OCSF Detection Finding) with
//! `Idempotency-Key: <finding uid>`, or Slack incoming-webhook text (`{"text": ...}`, a line per
//! finding, several findings a message, at most one message a second as Slack asks).
//!
//! With a `secret`, each request is signed the way Stripe and GitHub sign theirs:
//! `X-Ocelot-Timestamp: <unix seconds>` and `X-Ocelot-Signature: sha256=<hex HMAC-SHA256 of
//! "<timestamp>.<body>">`, so a receiver can check both origin and freshness.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use super::config::{WebhookConfig, WebhookFormat};
use super::http;
use super::{Defaults, Encoded, Item, Outcome};

pub struct Webhook {
    client: reqwest::Client,
    url: reqwest::Url,
    secret: Option<Vec<u8>>,
    format: WebhookFormat,
    headers: BTreeMap<String, String>,
}

impl Webhook {
    pub fn new(c: &WebhookConfig, timeout: Duration) -> Result<Webhook, String> {
        for (k, v) in &c.headers {
            reqwest::header::HeaderName::from_bytes(k.as_bytes()).map_err(|_| format!("headers: {k:?} is not a valid header name"))?;
            reqwest::header::HeaderValue::from_str(v).map_err(|_| format!("headers.{k}: the value is not a valid header value"))?;
        }
        Ok(Webhook {
            client: http::client(&c.tls, timeout)?,
            url: http::url("url", &c.url, "")?,
            secret: c.secret.as_ref().map(|s| s.resolve("secret").map(String::into_bytes)).transpose()?,
            format: c.format,
            headers: c.headers.clone(),
        })
    }

    pub fn defaults(&self) -> Defaults {
        match self.format {
            WebhookFormat::Ocsf => Defaults { max_batch: 1, max_batch_bytes: 1 << 20, rate_per_sec: None, burst: 1 },
            WebhookFormat::Slack => Defaults { max_batch: 20, max_batch_bytes: 40_000, rate_per_sec: Some(1.0), burst: 3 },
        }
    }

    pub fn encode(&self, item: &Item) -> Result<Vec<u8>, String> {
        match self.format {
            WebhookFormat::Ocsf => serde_json::to_vec(&item.ocsf).map_err(|e| e.to_string()),
            WebhookFormat::Slack => Ok(slack_line(item).into_bytes()),
        }
    }

    pub async fn send(&self, batch: &[Encoded]) -> Vec<Outcome> {
        let body = match self.format {
            // One finding per request (max_batch is 1 unless set otherwise: then a JSON array).
            WebhookFormat::Ocsf if batch.len() == 1 => batch[0].bytes.clone(),
            WebhookFormat::Ocsf => {
                let mut b = b"[".to_vec();
                for (i, e) in batch.iter().enumerate() {
                    if i > 0 {
                        b.push(b',');
                    }
                    b.extend_from_slice(&e.bytes);
                }
                b.push(b']');
                b
            }
            WebhookFormat::Slack => {
                let text: Vec<&str> = batch.iter().map(|e| std::str::from_utf8(&e.bytes).unwrap_or_default()).collect();
                serde_json::to_vec(&json!({"text": text.join("\n")})).unwrap_or_default()
            }
        };
        let mut req = self.client.post(self.url.clone()).header("Content-Type", "application/json");
        if self.format == WebhookFormat::Ocsf && batch.len() == 1 {
            req = req.header("Idempotency-Key", &batch[0].item.uid);
        }
        for (k, v) in &self.headers {
            req = req.header(k, v);
        }
        if let Some(key) = &self.secret {
            let ts = chrono::Utc::now().timestamp().to_string();
            req = req.header("X-Ocelot-Timestamp", &ts).header("X-Ocelot-Signature", signature(key, &ts, &body));
        }
        let outcome = match http::post(req, body).await {
            Ok((status, headers, text)) => http::by_status(status, &headers, &text),
            Err(o) => o,
        };
        vec![outcome; batch.len()]
    }
}

/// `sha256=<hex>` of HMAC-SHA256(key, "<timestamp>.<body>").
pub fn signature(key: &[u8], timestamp: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    let mut out = String::from("sha256=");
    for b in mac.finalize().into_bytes() {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// `[High] Agent deletes data without human approval (3 events) by alice: uid`.
fn slack_line(item: &Item) -> String {
    let f = &item.ocsf;
    let s = |p: &str| f.pointer(p).and_then(Value::as_str).unwrap_or("");
    let who = [s("/actor/user/name"), s("/actor/user/uid")].into_iter().find(|v| !v.is_empty()).unwrap_or("unknown principal");
    let count = f.get("count").and_then(Value::as_u64).unwrap_or(1);
    format!("[{}] {} ({count} event{}) by {who}: {}", s("/severity"), s("/finding_info/title"), if count == 1 { "" } else { "s" }, item.uid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_of_timestamp_dot_body() {
        // Expected from Python: hmac.new(b"secret", b'1700000000.{"a":1}', hashlib.sha256).
        let sig = signature(b"secret", "1700000000", br#"{"a":1}"#);
        assert_eq!(sig, "sha256=49f24e537407743fa4a0242bb63b94b9a47ee99cbbe071ccd8a22550ae411686");
    }
}
