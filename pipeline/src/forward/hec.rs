//! Splunk HTTP Event Collector: `POST /services/collector/event` with `Authorization: Splunk
//! <token>`, a body of event objects one after another, each with `time` (epoch seconds),
//! `source`, `sourcetype`, `index`, the finding as `event`, and its uid as the indexed field
//! `finding_uid` (Splunk has no upsert: searches dedup on it).
//!
//! Answers (Splunk's documented codes): 200 `{"code":0}` takes all; a 400 naming an
//! `invalid-event-number` took the events before it, refuses that one, and the rest are sent
//! again; 503 (busy, code 9) and 5xx are retried; other 4xx (bad token, disabled token,
//! wrong index) are refused and dead-lettered with Splunk's text.

use std::time::Duration;

use serde_json::json;

use super::config::HecConfig;
use super::http;
use super::{Defaults, Encoded, Item, Outcome};

/// Splunk's default `max_content_length` is far above 1 MiB, but proxies in front often are not.
pub const DEFAULTS: Defaults = Defaults { max_batch: 100, max_batch_bytes: 1 << 20, rate_per_sec: None, burst: 1 };

pub struct Hec {
    client: reqwest::Client,
    url: reqwest::Url,
    auth: String,
    index: Option<String>,
    source: String,
    sourcetype: String,
}

impl Hec {
    pub fn new(c: &HecConfig, timeout: Duration) -> Result<Hec, String> {
        Ok(Hec {
            client: http::client(&c.tls, timeout)?,
            url: http::url("url", &c.url, "/services/collector/event")?,
            auth: format!("Splunk {}", c.token.resolve("token")?),
            index: c.index.clone(),
            source: c.source.clone(),
            sourcetype: c.sourcetype.clone(),
        })
    }

    pub fn encode(&self, item: &Item) -> Result<Vec<u8>, String> {
        let mut e = json!({
            "time": item.time_ms as f64 / 1000.0,
            "source": self.source,
            "sourcetype": self.sourcetype,
            "event": item.ocsf,
            "fields": {"finding_uid": item.uid},
        });
        if let Some(i) = &self.index {
            e["index"] = json!(i);
        }
        let mut out = serde_json::to_vec(&e).map_err(|e| e.to_string())?;
        out.push(b'\n');
        Ok(out)
    }

    pub async fn send(&self, batch: &[Encoded]) -> Vec<Outcome> {
        let body = batch.iter().flat_map(|e| e.bytes.iter().copied()).collect();
        let req = self.client.post(self.url.clone()).header("Authorization", &self.auth).header("Content-Type", "application/json");
        let (status, headers, text) = match http::post(req, body).await {
            Ok(r) => r,
            Err(o) => return vec![o; batch.len()],
        };
        if status.as_u16() == 400
            && let Some(bad) = invalid_event(&text)
        {
            return (0..batch.len())
                .map(|i| match i.cmp(&bad) {
                    std::cmp::Ordering::Less => Outcome::Sent,
                    std::cmp::Ordering::Equal => Outcome::Reject(format!("HEC refused the event: {}", http::snippet(&text))),
                    std::cmp::Ordering::Greater => Outcome::retry("not indexed: an earlier event of the request was refused"),
                })
                .collect();
        }
        vec![http::by_status(status, &headers, &text); batch.len()]
    }
}

/// The index of the refused event in a 400 answer, e.g.
/// `{"text":"Invalid data format","code":6,"invalid-event-number":3}`.
fn invalid_event(body: &str) -> Option<usize> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    v.get("invalid-event-number")?.as_u64().map(|n| n as usize)
}
