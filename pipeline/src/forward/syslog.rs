//! Syslog (RFC 5424) over TCP, TLS (RFC 5425) or UDP (RFC 5426). A finding is one message:
//! `<PRI>1 TIMESTAMP HOSTNAME ocelot PROCID finding - MSG`, MSG being the OCSF finding as JSON or
//! an ArcSight CEF line. PRI = facility * 8 + the severity mapped from OCSF (Critical -> crit,
//! High -> err, Medium -> warning, Low -> notice, Informational -> info). On TCP and TLS
//! messages are framed by octet counting (`LEN SP MSG`, RFC 6587 / RFC 5425).
//!
//! Syslog has no acknowledgement: a message is "sent" once written to the socket (TCP, TLS) or
//! handed to the kernel (UDP). A broken connection is dropped, reconnected and the request sent
//! again; a message too large for a UDP datagram is dead-lettered (use TCP, or CEF, for large
//! findings).

use std::sync::Arc;
use std::time::Duration;

use chrono::{SecondsFormat, TimeZone, Utc};
use serde_json::Value;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::Mutex;

use super::config::{SyslogConfig, SyslogFormat, SyslogTransport};
use super::{Defaults, Encoded, Item, Outcome};

pub const DEFAULTS: Defaults = Defaults { max_batch: 500, max_batch_bytes: 4 << 20, rate_per_sec: None, burst: 1 };

/// The largest UDP payload (IPv4).
const MAX_DATAGRAM: usize = 65_507;

type Stream = Box<dyn AsyncWrite + Unpin + Send>;

pub struct Syslog {
    address: String,
    transport: SyslogTransport,
    format: SyslogFormat,
    facility: u8,
    hostname: String,
    timeout: Duration,
    tls: Option<(tokio_rustls::TlsConnector, rustls::pki_types::ServerName<'static>)>,
    conn: Mutex<Option<Stream>>,
}

impl Syslog {
    pub fn new(c: &SyslogConfig, timeout: Duration) -> Result<Syslog, String> {
        let host = c.address.rsplit_once(':').map(|(h, _)| h.trim_matches(['[', ']'])).ok_or_else(|| format!("address = {:?}: write host:port", c.address))?;
        let tls = match c.transport {
            SyslogTransport::Tls => {
                let name = rustls::pki_types::ServerName::try_from(c.tls.server_name.clone().unwrap_or_else(|| host.to_string())).map_err(|e| format!("tls.server_name: {e}"))?;
                Some((tls_connector(c.tls.ca_file.as_deref())?, name))
            }
            _ => None,
        };
        let hostname = c.hostname.clone().or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok().map(|h| h.trim().to_string())).filter(|h| !h.is_empty()).unwrap_or_else(|| "-".into());
        Ok(Syslog { address: c.address.clone(), transport: c.transport, format: c.format, facility: c.facility, hostname, timeout, tls, conn: Mutex::new(None) })
    }

    pub fn encode(&self, item: &Item) -> Result<Vec<u8>, String> {
        let f = &item.ocsf;
        let severity = match item.severity_id {
            6 => 1,
            5 => 2,
            4 => 3,
            3 => 4,
            2 => 5,
            _ => 6,
        };
        let time = Utc.timestamp_millis_opt(item.time_ms).single().unwrap_or_else(Utc::now).to_rfc3339_opts(SecondsFormat::Millis, true);
        let msg = match self.format {
            SyslogFormat::Json => serde_json::to_string(f).map_err(|e| e.to_string())?,
            SyslogFormat::Cef => cef(item),
        };
        let line = format!("<{}>1 {time} {} ocelot {} finding - {msg}", self.facility as u32 * 8 + severity, self.hostname, std::process::id());
        if self.transport == SyslogTransport::Udp && line.len() > MAX_DATAGRAM {
            return Err(format!("the {}-byte message does not fit a UDP datagram: use transport = \"tcp\" or format = \"cef\"", line.len()));
        }
        Ok(match self.transport {
            SyslogTransport::Udp => line.into_bytes(),
            _ => format!("{} {line}", line.len()).into_bytes(),
        })
    }

    pub async fn send(&self, batch: &[Encoded]) -> Vec<Outcome> {
        let outcome = match tokio::time::timeout(self.timeout, self.write(batch)).await {
            Ok(Ok(())) => Outcome::Sent,
            Ok(Err(e)) => Outcome::retry(format!("syslog {}: {e}", self.address)),
            Err(_) => Outcome::retry(format!("syslog {}: timed out", self.address)),
        };
        if outcome != Outcome::Sent {
            // A half-written stream must not be written to again: reconnect next time.
            *self.conn.lock().await = None;
        }
        vec![outcome; batch.len()]
    }

    async fn write(&self, batch: &[Encoded]) -> std::io::Result<()> {
        if self.transport == SyslogTransport::Udp {
            let sock = UdpSocket::bind(if self.address.starts_with('[') { "[::]:0" } else { "0.0.0.0:0" }).await?;
            sock.connect(&self.address).await?;
            for e in batch {
                sock.send(&e.bytes).await?;
            }
            return Ok(());
        }
        let mut conn = self.conn.lock().await;
        if conn.is_none() {
            let tcp = TcpStream::connect(&self.address).await?;
            tcp.set_nodelay(true)?;
            *conn = Some(match &self.tls {
                Some((connector, name)) => Box::new(connector.connect(name.clone(), tcp).await?),
                None => Box::new(tcp),
            });
        }
        let stream = conn.as_mut().expect("connected above");
        let body: Vec<u8> = batch.iter().flat_map(|e| e.bytes.iter().copied()).collect();
        stream.write_all(&body).await?;
        stream.flush().await
    }
}

/// TLS with the platform's roots plus the CA file, if any.
fn tls_connector(ca_file: Option<&std::path::Path>) -> Result<tokio_rustls::TlsConnector, String> {
    use rustls::pki_types::pem::PemObject;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut extra = Vec::new();
    if let Some(path) = ca_file {
        for cert in rustls::pki_types::CertificateDer::pem_file_iter(path).map_err(|e| format!("tls.ca_file {}: {e}", path.display()))? {
            extra.push(cert.map_err(|e| format!("tls.ca_file {}: {e}", path.display()))?);
        }
    }
    let verifier = rustls_platform_verifier::Verifier::new_with_extra_roots(extra, provider.clone()).map_err(|e| format!("TLS roots: {e}"))?;
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

/// `CEF:0|Ocelot|Ocelot|VERSION|rule|title|severity|extensions`, escaped as the CEF spec says.
fn cef(item: &Item) -> String {
    let f = &item.ocsf;
    let s = |p: &str| f.pointer(p).and_then(Value::as_str).unwrap_or_default();
    let head = |v: &str| v.replace('\\', "\\\\").replace('|', "\\|").replace(['\r', '\n'], " ");
    let ext = |v: &str| v.replace('\\', "\\\\").replace('=', "\\=").replace("\r\n", "\\n").replace('\n', "\\n").replace('\r', "\\r");
    // CEF severity 0-10 from OCSF 1-6.
    let severity = (item.severity_id.clamp(0, 5) * 2).min(10);
    let mut out = format!("CEF:0|Ocelot|Ocelot|{}|{}|{}|{severity}|externalId={}", env!("CARGO_PKG_VERSION"), head(s("/finding_info/analytic/uid")), head(s("/finding_info/title")), ext(&item.uid));
    out.push_str(&format!(" rt={} cnt={}", item.time_ms, f.get("count").and_then(Value::as_u64).unwrap_or(1)));
    for (key, value) in [("suser", s("/actor/user/name")), ("suid", s("/actor/user/uid")), ("cs1", s("/actor/app_name")), ("cs2", s("/unmapped/approval")), ("msg", s("/message"))] {
        if value.is_empty() {
            continue;
        }
        match key {
            "cs1" => out.push_str(" cs1Label=agent"),
            "cs2" => out.push_str(" cs2Label=approval"),
            _ => {}
        }
        out.push_str(&format!(" {key}={}", ext(value)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cef_escapes_its_separators() {
        let item = Item::new(serde_json::json!({
            "severity_id": 4, "time": 1_000, "count": 2,
            "finding_info": {"uid": "u-1", "title": "a|b", "analytic": {"uid": "r\\1"}},
            "message": "x=y\nz", "actor": {"app_name": "claude-code"},
        }));
        assert_eq!(cef(&item), "CEF:0|Ocelot|Ocelot|0.1.0|r\\\\1|a\\|b|8|externalId=u-1 rt=1000 cnt=2 cs1Label=agent cs1=claude-code msg=x\\=y\\nz");
    }
}
