//! Who may query: bearer tokens and basic-auth users from `[sql]`, and the session tokens a
//! Flight handshake hands out to basic-auth users (Flight clients such as ADBC send the user and
//! password once, then the token). Nobody without credentials, unless `allow_anonymous`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;
use ocelot_lake::config::SqlServer;
use rand::RngCore;
use tonic::metadata::MetadataMap;
use tonic::Status;

/// A handshake token lives this long; the client then handshakes again.
const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);

pub struct Auth {
    tokens: Vec<String>,
    users: Vec<(String, String)>,
    anonymous: bool,
    sessions: Mutex<HashMap<String, (String, Instant)>>,
}

impl Auth {
    /// Reads the secrets (`{ env }`, `{ file }`) once, at start.
    pub fn new(cfg: &SqlServer) -> Result<Auth, String> {
        let tokens = cfg.tokens.iter().enumerate().map(|(i, t)| t.resolve(&format!("sql.tokens[{i}]"))).collect::<Result<_, _>>()?;
        let users = cfg.users.iter().map(|(u, p)| Ok((u.clone(), p.resolve(&format!("sql.users.{u}"))?))).collect::<Result<_, String>>()?;
        Ok(Auth { tokens, users, anonymous: cfg.allow_anonymous, sessions: Mutex::new(HashMap::new()) })
    }

    /// The caller's name for the audit log, or why not.
    pub fn check(&self, headers: &MetadataMap) -> Result<String, Status> {
        let Some(value) = headers.get("authorization") else {
            return if self.anonymous { Ok("anonymous".into()) } else { Err(Status::unauthenticated("credentials required: send `authorization: Bearer <token>`, or a handshake with basic auth")) };
        };
        let value = value.to_str().map_err(|_| Status::unauthenticated("the authorization header is not text"))?;
        if let Some(token) = strip_scheme(value, "bearer") {
            if self.tokens.iter().any(|t| same(t, token)) {
                return Ok("token".into());
            }
            let mut sessions = self.sessions.lock().expect("sessions lock");
            sessions.retain(|_, (_, expires)| *expires > Instant::now());
            if let Some((user, _)) = sessions.get(token) {
                return Ok(user.clone());
            }
            return Err(Status::unauthenticated("unknown or expired token"));
        }
        if let Some(basic) = strip_scheme(value, "basic") {
            return self.basic(basic);
        }
        Err(Status::unauthenticated("authorization: expected Bearer or Basic"))
    }

    /// A handshake: basic credentials (or a valid bearer token) in, a session token out.
    pub fn handshake(&self, headers: &MetadataMap) -> Result<String, Status> {
        let user = self.check(headers)?;
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        self.sessions.lock().expect("sessions lock").insert(token.clone(), (user, Instant::now() + SESSION_TTL));
        Ok(token)
    }

    fn basic(&self, encoded: &str) -> Result<String, Status> {
        let bad = || Status::unauthenticated("basic auth: expected base64 of user:password");
        // Padded or not: Go's Flight client (under ADBC) sends it without padding.
        let decoded = base64::engine::general_purpose::STANDARD_NO_PAD.decode(encoded.trim().trim_end_matches('=')).map_err(|_| bad())?;
        let decoded = String::from_utf8(decoded).map_err(|_| bad())?;
        let (user, password) = decoded.split_once(':').ok_or_else(bad)?;
        // Every user is compared, so the time taken does not tell which names exist.
        let ok = self.users.iter().fold(false, |ok, (u, p)| ok | (same(u, user) & same(p, password)));
        if ok {
            Ok(user.to_string())
        } else {
            Err(Status::unauthenticated("wrong user or password"))
        }
    }
}

fn strip_scheme<'a>(value: &'a str, scheme: &str) -> Option<&'a str> {
    let (s, rest) = value.split_once(' ')?;
    s.eq_ignore_ascii_case(scheme).then_some(rest.trim())
}

/// Equality whose time depends only on the lengths, not on where the bytes differ.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(toml: &str) -> Auth {
        let cfg = ocelot_lake::config::ServeConfig::from_toml(&format!("[lake]\npath = \"/tmp/l\"\n[sql]\n{toml}")).unwrap();
        Auth::new(&cfg.sql).unwrap()
    }

    fn headers(value: &str) -> MetadataMap {
        let mut m = MetadataMap::new();
        m.insert("authorization", value.parse().unwrap());
        m
    }

    #[test]
    fn tokens_users_and_handshake_sessions() {
        let a = auth("tokens = [\"t0ken\"]\nusers = { alice = \"pw\" }\n");
        assert_eq!(a.check(&headers("Bearer t0ken")).unwrap(), "token");
        assert!(a.check(&headers("Bearer t0kem")).is_err());
        assert!(a.check(&MetadataMap::new()).is_err(), "no anonymous access by default");
        let basic = |s: &str| headers(&format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(s)));
        assert_eq!(a.check(&basic("alice:pw")).unwrap(), "alice");
        assert_eq!(a.check(&headers(&format!("Basic {}", base64::engine::general_purpose::STANDARD_NO_PAD.encode("alice:pw")))).unwrap(), "alice");
        assert!(a.check(&basic("alice:pW")).is_err());
        assert!(a.check(&basic("bob:pw")).is_err());
        let session = a.handshake(&basic("alice:pw")).unwrap();
        assert_eq!(a.check(&headers(&format!("bearer {session}"))).unwrap(), "alice");
        assert!(a.handshake(&basic("alice:nope")).is_err());
    }

    #[test]
    fn anonymous_only_when_enabled() {
        assert_eq!(auth("allow_anonymous = true\n").check(&MetadataMap::new()).unwrap(), "anonymous");
    }
}
