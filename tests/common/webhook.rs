//! A webhook receiver on loopback, as `[[forward]] type = "webhook"` targets see one.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Starts a receiver that answers 200 after `delay` (a slow target); returns its URL and the
/// `Idempotency-Key` of every request it answered, in order (checked to be the finding's uid).
pub fn receiver(delay: Duration) -> (String, Arc<Mutex<Vec<String>>>) {
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", server.server_addr().to_ip().unwrap());
    let keys = Arc::new(Mutex::new(Vec::new()));
    let seen = keys.clone();
    std::thread::spawn(move || {
        for mut req in server.incoming_requests() {
            let mut body = String::new();
            let _ = req.as_reader().read_to_string(&mut body);
            std::thread::sleep(delay);
            let key = req.headers().iter().find(|h| h.field.equiv("Idempotency-Key")).map(|h| h.value.to_string());
            if let Some(k) = key {
                let v: serde_json::Value = serde_json::from_str(&body).unwrap();
                assert_eq!(v["finding_info"]["uid"], k.as_str(), "the key is the finding's uid");
                seen.lock().unwrap().push(k);
            }
            let _ = req.respond(tiny_http::Response::empty(200));
        }
    });
    (url, keys)
}
