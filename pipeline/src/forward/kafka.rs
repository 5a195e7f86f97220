//! A Kafka topic of findings: OCSF JSON, key = the finding uid (on a compacted topic the latest
//! version of each finding stays), header `ocelot.class` = `detection_finding`. librdkafka
//! batches and retries on its own within `message.timeout.ms`; what it still fails is
//! retried here, and a record the broker refuses as too large is dead-lettered.

use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};

use super::config::KafkaForwardConfig;
use super::{Defaults, Encoded, Item, Outcome};

pub const DEFAULTS: Defaults = Defaults { max_batch: 1000, max_batch_bytes: 16 << 20, rate_per_sec: None, burst: 1 };

pub struct KafkaTarget {
    producer: FutureProducer,
    topic: String,
}

impl KafkaTarget {
    pub fn new(c: &KafkaForwardConfig, timeout: Duration) -> Result<KafkaTarget, String> {
        let mut cfg = ClientConfig::new();
        cfg.set("bootstrap.servers", &c.brokers).set("message.timeout.ms", timeout.as_millis().to_string()).set("enable.idempotence", "true");
        for (k, v) in &c.properties {
            cfg.set(k, v.resolve(&format!("properties.\"{k}\""))?);
        }
        let producer = cfg.create().map_err(|e| format!("kafka producer (brokers, properties): {e}"))?;
        Ok(KafkaTarget { producer, topic: c.topic.clone() })
    }

    pub fn encode(&self, item: &Item) -> Result<Vec<u8>, String> {
        serde_json::to_vec(&item.ocsf).map_err(|e| e.to_string())
    }

    pub async fn send(&self, batch: &[Encoded]) -> Vec<Outcome> {
        let mut waiting = Vec::with_capacity(batch.len());
        for e in batch {
            let headers = OwnedHeaders::new().insert(Header { key: "ocelot.class", value: Some("detection_finding") });
            let rec = FutureRecord::to(&self.topic).key(e.item.uid.as_bytes()).payload(&e.bytes).headers(headers);
            waiting.push(self.producer.send_result(rec).map_err(|(e, _)| e));
        }
        let mut out = Vec::with_capacity(batch.len());
        for w in waiting {
            let r = match w {
                Ok(fut) => match fut.await {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err((e, _))) => Err(e),
                    Err(_) => Err(KafkaError::Canceled),
                },
                Err(e) => Err(e),
            };
            out.push(match r {
                Ok(()) => Outcome::Sent,
                Err(e) if too_large(&e) => Outcome::Reject(format!("the broker refused the finding as too large: {e}")),
                Err(e) => Outcome::retry(format!("kafka: {e}")),
            });
        }
        out
    }
}

fn too_large(e: &KafkaError) -> bool {
    matches!(e.rdkafka_error_code(), Some(RDKafkaErrorCode::MessageSizeTooLarge | RDKafkaErrorCode::InvalidMessageSize))
}
