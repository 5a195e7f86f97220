//! `ocelot serve`: Arrow Flight SQL over the lake, so BI tools, JDBC/ODBC and ADBC clients query
//! the same tables, views and functions as `ocelot sql`. Authenticated (bearer tokens, basic
//! users; anonymous only when enabled), optionally TLS, read-only, and each query bounded in
//! time and memory (docs/sql.md).

mod auth;
mod query;
mod service;

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use arrow_flight::flight_service_server::FlightServiceServer;
use ocelot_lake::config::SqlServer;
use tonic::transport::{Identity, Server, ServerTlsConfig};

/// Serves until `shutdown` completes, on `listener` (bound by the caller, so tests can take a
/// free port and the CLI can say where it listens before serving).
pub async fn serve(lake: &ocelot_lake::Storage, cfg: &SqlServer, listener: tokio::net::TcpListener, shutdown: impl Future<Output = ()>) -> Result<(), String> {
    let auth = auth::Auth::new(cfg)?;
    let limits = query::Limits { timeout: Duration::from_secs(cfg.query_timeout_secs), memory_bytes: cfg.query_memory_mb << 20, concurrent: cfg.max_concurrent_queries };
    let engine = query::Engine::new(lake, limits).await.map_err(|e| format!("lake {lake}: {e}"))?;
    let service = FlightServiceServer::new(service::Service::new(auth, engine));
    let mut server = Server::builder();
    if let Some(tls) = &cfg.tls {
        // Two rustls providers are linked (aws-lc-rs for tonic, ring for object_store's S3
        // client), so rustls cannot pick one by itself: tonic's is made the process default.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let read = |p: &Path, key: &str| std::fs::read(p).map_err(|e| format!("{key}: {}: {e}", p.display()));
        let identity = Identity::from_pem(read(&tls.cert, "sql.tls.cert")?, read(&tls.key, "sql.tls.key")?);
        server = server.tls_config(ServerTlsConfig::new().identity(identity)).map_err(|e| format!("sql.tls: {e}"))?;
    }
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    server.add_service(service).serve_with_incoming_shutdown(incoming, shutdown).await.map_err(|e| format!("Flight SQL server: {e}"))
}
