//! What the HTTP targets share: the client (rustls, the platform's roots plus an optional CA
//! file, a request timeout) and how a response status becomes an outcome.

use std::time::Duration;

use reqwest::header::HeaderMap;
use reqwest::StatusCode;

use super::config::Tls;
use super::Outcome;

pub fn client(tls: &Tls, timeout: Duration) -> Result<reqwest::Client, String> {
    let mut b = reqwest::Client::builder().timeout(timeout).connect_timeout(timeout.min(Duration::from_secs(10))).user_agent(concat!("ocelot/", env!("CARGO_PKG_VERSION")));
    if let Some(path) = &tls.ca_file {
        let pem = std::fs::read(path).map_err(|e| format!("tls.ca_file {}: {e}", path.display()))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| format!("tls.ca_file {}: not a PEM certificate: {e}", path.display()))?;
        if certs.is_empty() {
            return Err(format!("tls.ca_file {}: no certificate in it", path.display()));
        }
        for c in certs {
            b = b.add_root_certificate(c);
        }
    }
    b.build().map_err(|e| format!("HTTP client: {e}"))
}

/// Checks a target URL at start-up, so a typo fails fast with the key named.
pub fn url(key: &str, base: &str, path: &str) -> Result<reqwest::Url, String> {
    let u = reqwest::Url::parse(base).map_err(|e| format!("{key} = {base:?}: {e} (write e.g. https://host:port)"))?;
    if !matches!(u.scheme(), "http" | "https") {
        return Err(format!("{key} = {base:?}: the scheme must be http or https"));
    }
    let joined = format!("{}{path}", base.trim_end_matches('/'));
    reqwest::Url::parse(&joined).map_err(|e| format!("{key}: {e}"))
}

/// The outcome of a whole request from its status: 2xx sent; 408, 429 and 5xx worth another
/// try (with the server's `Retry-After`); any other status refused for good.
pub fn by_status(status: StatusCode, headers: &HeaderMap, body: &str) -> Outcome {
    if status.is_success() {
        return Outcome::Sent;
    }
    let what = format!("HTTP {}: {}", status.as_u16(), snippet(body));
    if status == StatusCode::REQUEST_TIMEOUT || status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
        Outcome::Retry { reason: what, after: retry_after(headers) }
    } else {
        Outcome::Reject(what)
    }
}

/// A network failure (refused, reset, timed out): always worth another try.
pub fn by_error(e: &reqwest::Error) -> Outcome {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "request failed"
    };
    let mut msg = format!("{kind}: {e}");
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        msg.push_str(&format!(": {s}"));
        src = s.source();
    }
    Outcome::retry(msg)
}

/// `Retry-After` in seconds (the HTTP-date form is rare from these targets and ignored).
fn retry_after(h: &HeaderMap) -> Option<Duration> {
    h.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// The start of a response body, for a reason.
pub fn snippet(body: &str) -> &str {
    let end = body.char_indices().nth(300).map_or(body.len(), |(i, _)| i);
    body[..end].trim()
}

/// Posts `body` and reads the answer: `Ok((status, headers, body))`, or the outcome of a
/// network failure for every finding of the request.
pub async fn post(req: reqwest::RequestBuilder, body: Vec<u8>) -> Result<(StatusCode, HeaderMap, String), Outcome> {
    let resp = req.body(body).send().await.map_err(|e| by_error(&e))?;
    let status = resp.status();
    let headers = resp.headers().clone();
    let text = resp.text().await.map_err(|e| by_error(&e))?;
    Ok((status, headers, text))
}
