//! Elasticsearch / OpenSearch `_bulk`: newline-delimited JSON (`application/x-ndjson`), an
//! `index` action with `_id` = the finding uid before each document (a later version of a
//! finding replaces the earlier one), and the body ends with a newline as the API requires.
//! The document is the OCSF finding with `@timestamp` added (what Kibana and ECS tools sort by).
//!
//! A 200 answer carries one result per action: 2xx took it; 429 (the queue is full) and 5xx
//! (e.g. a shard unavailable) are sent again; any other status (400 mapping errors...) is
//! refused and dead-lettered with Elasticsearch's error type and reason.

use std::time::Duration;

use base64::Engine;
use chrono::{TimeZone, Utc};
use serde_json::{json, Value};

use super::config::BulkConfig;
use super::http;
use super::{Defaults, Encoded, Item, Outcome};

/// Elastic advises bulk requests of a few MB.
pub const DEFAULTS: Defaults = Defaults { max_batch: 500, max_batch_bytes: 5 << 20, rate_per_sec: None, burst: 1 };

pub struct Bulk {
    client: reqwest::Client,
    url: reqwest::Url,
    auth: Option<String>,
    index: String,
}

impl Bulk {
    pub fn new(c: &BulkConfig, timeout: Duration) -> Result<Bulk, String> {
        let auth = match (&c.username, &c.password, &c.api_key) {
            (Some(_), _, Some(_)) => return Err("both `api_key` and `username` are set: keep one way to authenticate".into()),
            (_, _, Some(k)) => Some(format!("ApiKey {}", k.resolve("api_key")?)),
            (Some(u), Some(p), None) => Some(format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{u}:{}", p.resolve("password")?)))),
            (Some(_), None, None) => return Err("`username` is set without `password`".into()),
            (None, Some(_), None) => return Err("`password` is set without `username`".into()),
            (None, None, None) => None,
        };
        let mut url = http::url("url", &c.url, "/_bulk")?;
        if let Some(p) = &c.pipeline {
            url.query_pairs_mut().append_pair("pipeline", p);
        }
        Ok(Bulk { client: http::client(&c.tls, timeout)?, url, auth, index: c.index.clone() })
    }

    pub fn encode(&self, item: &Item) -> Result<Vec<u8>, String> {
        let mut out = serde_json::to_vec(&json!({"index": {"_index": self.index, "_id": item.uid}})).map_err(|e| e.to_string())?;
        out.push(b'\n');
        let mut doc = item.ocsf.clone();
        if let (Some(o), Some(t)) = (doc.as_object_mut(), Utc.timestamp_millis_opt(item.time_ms).single()) {
            o.insert("@timestamp".into(), json!(t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)));
        }
        serde_json::to_writer(&mut out, &doc).map_err(|e| e.to_string())?;
        out.push(b'\n');
        Ok(out)
    }

    pub async fn send(&self, batch: &[Encoded]) -> Vec<Outcome> {
        let body = batch.iter().flat_map(|e| e.bytes.iter().copied()).collect();
        let mut req = self.client.post(self.url.clone()).header("Content-Type", "application/x-ndjson");
        if let Some(a) = &self.auth {
            req = req.header("Authorization", a);
        }
        let (status, headers, text) = match http::post(req, body).await {
            Ok(r) => r,
            Err(o) => return vec![o; batch.len()],
        };
        if !status.is_success() {
            return vec![http::by_status(status, &headers, &text); batch.len()];
        }
        match per_item(&text, batch.len()) {
            Ok(v) => v,
            // A 200 we cannot read: whether the documents were indexed is unknown, and sending
            // them again is harmless (same _id).
            Err(e) => vec![Outcome::retry(format!("unreadable _bulk answer: {e}")); batch.len()],
        }
    }
}

/// One outcome per action from a `_bulk` answer.
fn per_item(body: &str, n: usize) -> Result<Vec<Outcome>, String> {
    let v: Value = serde_json::from_str(body).map_err(|e| format!("{e}: {}", http::snippet(body)))?;
    let items = v.get("items").and_then(Value::as_array).ok_or_else(|| format!("no `items`: {}", http::snippet(body)))?;
    if items.len() != n {
        return Err(format!("{} results for {n} actions", items.len()));
    }
    Ok(items
        .iter()
        .map(|it| {
            let r = it.as_object().and_then(|o| o.values().next()).cloned().unwrap_or(Value::Null);
            let status = r.get("status").and_then(Value::as_u64).unwrap_or(0);
            let error = || {
                let e = r.get("error");
                let kind = e.and_then(|e| e.get("type")).and_then(Value::as_str).unwrap_or("error");
                let reason = e.and_then(|e| e.get("reason")).and_then(Value::as_str).unwrap_or("");
                format!("_bulk item {status} {kind}: {reason}")
            };
            match status {
                200..=299 => Outcome::Sent,
                429 | 500..=599 => Outcome::retry(error()),
                _ => Outcome::Reject(error()),
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_action_gets_its_own_outcome() {
        let body = r#"{"took":3,"errors":true,"items":[
            {"index":{"_id":"a","status":201,"result":"created"}},
            {"index":{"_id":"b","status":429,"error":{"type":"es_rejected_execution_exception","reason":"queue full"}}},
            {"index":{"_id":"c","status":400,"error":{"type":"mapper_parsing_exception","reason":"failed to parse field [time]"}}},
            {"index":{"_id":"d","status":200,"result":"updated"}}]}"#;
        let o = per_item(body, 4).unwrap();
        assert_eq!(o[0], Outcome::Sent);
        assert!(matches!(&o[1], Outcome::Retry { reason, .. } if reason.contains("es_rejected_execution_exception")));
        assert!(matches!(&o[2], Outcome::Reject(r) if r.contains("mapper_parsing_exception") && r.contains("failed to parse")));
        assert_eq!(o[3], Outcome::Sent);
        assert!(per_item(body, 3).is_err());
    }
}
