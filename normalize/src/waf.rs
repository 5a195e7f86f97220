//! AWS WAF web ACL logs (WAFv2 and Classic) to OCSF 1.8.0 HTTP Activity (4002) with the
//! `security_control` profile. The mapping and its reasons: `docs/mappings/waf.md`.

use ocelot_schemas::{BatchWriter, WriterError};
use simd_json::BorrowedValue;

use super::columns::columns;
use super::head::{obs, parse_arn, Head};
use super::time::parse_time_ms;
use super::{ClassWriter, Normalizer, OcsfBatch};
use crate::decode::Origin;
use crate::json::{get, i64_of, is_null, str_of, Mapped};

columns! {
    pub struct Http {
        md_feature_uid: str = "metadata.product.feature.uid",
        action: str = "action",
        action_id: i32 = "action_id",
        disposition: str = "disposition",
        disposition_id: i32 = "disposition_id",
        fw_uid: str = "firewall_rule.uid",
        fw_name: str = "firewall_rule.name",
        fw_type: str = "firewall_rule.type",
        fw_category: str = "firewall_rule.category",
        fw_condition: str = "firewall_rule.condition",
        fw_location: str = "firewall_rule.match_location",
        fw_sensitivity: str = "firewall_rule.sensitivity",
        fw_rate_limit: i32 = "firewall_rule.rate_limit",
        fw_details: list = "firewall_rule.match_details",
        policy_uid: str = "policy.uid",
        policy_name: str = "policy.name",
        src_ip: str = "src_endpoint.ip",
        src_country: str = "src_endpoint.location.country",
        src_svc: str = "src_endpoint.svc_name",
        src_uid: str = "src_endpoint.uid",
        method: str = "http_request.http_method",
        version: str = "http_request.version",
        req_uid: str = "http_request.uid",
        args: str = "http_request.args",
        url_path: str = "http_request.url.path",
        url_query: str = "http_request.url.query_string",
        url_host: str = "http_request.url.hostname",
        url_scheme: str = "http_request.url.scheme",
        url_string: str = "http_request.url.url_string",
        user_agent: str = "http_request.user_agent",
        referrer: str = "http_request.referrer",
        xff: list = "http_request.x_forwarded_for",
        headers: list = "http_request.http_headers",
        header_name: str = "http_request.http_headers.name",
        header_value: str = "http_request.http_headers.value",
        resp_code: i32 = "http_response.code",
        tls_version: str = "tls.version",
        ja3_alg: str = "tls.ja3_hash.algorithm",
        ja3_alg_id: i32 = "tls.ja3_hash.algorithm_id",
        ja3_value: str = "tls.ja3_hash.value",
        ja4: list = "ja4_fingerprint_list",
        ja4_type: str = "ja4_fingerprint_list.type",
        ja4_type_id: i32 = "ja4_fingerprint_list.type_id",
        ja4_value: str = "ja4_fingerprint_list.value",
    }
}

pub const PATHS: &[(&str, &[&[&str]])] = &[("http_activity", &[Head::PATHS, Http::PATHS])];

/// Source fields the mapping consumes; the rest (rule group and rate-based rule lists,
/// non-terminating matches, CAPTCHA/challenge responses, inserted headers...) stays in
/// `unmapped`, whole.
const MAPPED: &[&str] = &[
    "timestamp",
    "formatVersion",
    "webaclId",
    "terminatingRuleId",
    "terminatingRuleType",
    "action",
    "terminatingRuleMatchDetails",
    "httpSourceName",
    "httpSourceId",
    "labels",
    "responseCodeSent",
    "ja4Fingerprint",
    "httpRequest.clientIp",
    "httpRequest.country",
    "httpRequest.headers",
    "httpRequest.uri",
    "httpRequest.args",
    "httpRequest.httpVersion",
    "httpRequest.httpMethod",
    "httpRequest.requestId",
    "httpRequest.scheme",
];

pub struct Waf {
    cw: ClassWriter,
    head: Head,
    http: Http,
    mapped: Mapped,
    mapped_ja3: Mapped,
    mapped_sampled: Mapped,
    buf: Vec<u8>,
}

impl Waf {
    pub fn new() -> Result<Waf, WriterError> {
        let cw = ClassWriter::new("http_activity")?;
        let (head, http) = (Head::resolve(&cw.writer)?, Http::resolve(&cw.writer)?);
        let with_ja3: Vec<&str> = MAPPED.iter().copied().chain(["ja3Fingerprint"]).collect();
        let sampled =
            Mapped::new(&["Action", "Timestamp", "RuleNameWithinRuleGroup", "Request.ClientIP", "Request.Country", "Request.URI", "Request.Method", "Request.HTTPVersion", "Request.Headers"]);
        Ok(Waf { cw, head, http, mapped: Mapped::new(MAPPED), mapped_ja3: Mapped::new(&with_ja3), mapped_sampled: sampled, buf: Vec::with_capacity(2048) })
    }
}

impl Waf {
    /// One request of `GetSampledRequests` (`{"SampledRequests": [...]}`, unwrapped by the
    /// decoder): the same HTTP Activity, from the API's shape. The web ACL is the API call's
    /// parameter, not in its output: no policy, region or account.
    fn sampled(&mut self, v: &BorrowedValue<'_>) -> Result<(), String> {
        let req = get(v, "Request").filter(|r| matches!(r, BorrowedValue::Object(_))).ok_or("not a WAF sampled request: no Request object")?;
        let secs = crate::json::f64_of(get(v, "Timestamp")).ok_or("not a WAF sampled request: no Timestamp (epoch seconds)")?;
        let time = super::time::admit((secs * 1000.0).round() as i64)?;
        let (w, h, c) = (&mut self.cw.writer, &self.head, &self.http);
        let method = str_of(get(req, "Method"));
        let activity = method.map_or(0, method_activity);
        h.classify(w, self.cw.class, activity, if activity == 99 { method } else { None });
        h.time(w, time);
        h.severity(w, 1);
        h.product(w, "AWS WAF", "AWS", &["cloud", "security_control"]);
        w.str(h.md_log_provider, "AWS WAF");
        w.str(h.md_log_name, "GetSampledRequests");
        h.aws(w, None, None);
        if let Some(act) = str_of(get(v, "Action")) {
            write_action(w, c, act);
        }
        // `AWS#AWSManagedRulesSQLiRuleSet#SQLi_BODY`: the rule group, then the rule.
        if let Some(rule) = str_of(get(v, "RuleNameWithinRuleGroup")).filter(|r| !r.is_empty()) {
            w.str(c.fw_uid, rule);
            match rule.rsplit_once('#') {
                Some((group, name)) => {
                    w.str(c.fw_category, group);
                    w.str(c.fw_name, name);
                }
                None => w.str(c.fw_name, rule),
            }
        }
        let ip = str_of(get(req, "ClientIP")).map(|ip| super::cloudtrail::canonical_ip(ip).unwrap_or_else(|| ip.to_string()));
        if let Some(ip) = &ip {
            w.str(c.src_ip, ip);
        }
        if let Some(cc) = str_of(get(req, "Country")).filter(|s| !s.is_empty() && *s != "-") {
            w.str(c.src_country, cc);
        }
        if let Some(m) = method {
            w.str(c.method, m);
        }
        if let Some(ver) = str_of(get(req, "HTTPVersion")) {
            w.str(c.version, ver);
        }
        if let Some(u) = str_of(get(req, "URI")) {
            w.str(c.url_path, u);
        }
        let host = write_headers(w, c, get(req, "Headers"), ("Name", "Value"));
        if let Some(hn) = host {
            w.str(c.url_host, hn);
            h.observable(w, "http_request.url.hostname", obs::HOSTNAME, hn);
        }
        if let Some(ip) = &ip {
            h.observable(w, "src_endpoint.ip", obs::IP, ip);
        }
        h.finish_row(w, v, &self.mapped_sampled, &mut self.buf);
        Ok(())
    }
}

/// The action and disposition of a WAF action word.
fn write_action(w: &mut BatchWriter, c: &Http, act: &str) {
    let (aid, a, did, d) = action(act);
    w.i32(c.action_id, aid);
    w.str(c.action, a);
    w.i32(c.disposition_id, did);
    w.str(c.disposition, d);
}

/// Every header as sent (logs write `name`/`value`, the API `Name`/`Value`); the ones OCSF
/// names get their own fields too. Returns the Host header.
fn write_headers<'v>(w: &mut BatchWriter, c: &Http, headers: Option<&'v BorrowedValue<'_>>, (name_key, value_key): (&str, &str)) -> Option<&'v str> {
    let Some(BorrowedValue::Array(headers)) = headers else { return None };
    let mut host = None;
    for hd in headers.iter() {
        let (Some(name), Some(value)) = (str_of(get(hd, name_key)), str_of(get(hd, value_key))) else { continue };
        w.begin_item(c.headers);
        w.str(c.header_name, name);
        w.str(c.header_value, value);
        w.end_item(c.headers);
        if name.eq_ignore_ascii_case("user-agent") {
            w.str(c.user_agent, value);
        } else if name.eq_ignore_ascii_case("referer") {
            w.str(c.referrer, value);
        } else if name.eq_ignore_ascii_case("host") {
            host = Some(value);
        } else if name.eq_ignore_ascii_case("x-forwarded-for") {
            for ip in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                w.push_str(c.xff, ip);
            }
        }
    }
    host
}

/// HTTP Activity's activity from the request method.
fn method_activity(method: &str) -> i32 {
    const METHODS: [(&str, i32); 9] = [("GET", 3), ("POST", 6), ("PUT", 7), ("DELETE", 2), ("HEAD", 4), ("OPTIONS", 5), ("PATCH", 9), ("CONNECT", 1), ("TRACE", 8)];
    METHODS.iter().find(|(m, _)| m.eq_ignore_ascii_case(method)).map_or(99, |(_, id)| *id)
}

/// (action_id, action, disposition_id, disposition) of a WAF action. CAPTCHA and CHALLENGE
/// answer the request with a puzzle instead of forwarding it, so the request is denied.
fn action(a: &str) -> (i32, &str, i32, &str) {
    match a {
        "ALLOW" => (1, "Allowed", 1, "Allowed"),
        "BLOCK" => (2, "Denied", 2, "Blocked"),
        "COUNT" => (1, "Allowed", 20, "Count"),
        "CAPTCHA" => (2, "Denied", 22, "Captcha"),
        "CHALLENGE" => (2, "Denied", 23, "Challenge"),
        other => (99, other, 99, other),
    }
}

/// The time of a record: epoch milliseconds (WAF's own logs) or an RFC 3339 string (exports).
fn record_time(v: Option<&BorrowedValue<'_>>) -> Option<i64> {
    i64_of(v).filter(|_| !matches!(v, Some(BorrowedValue::String(_)))).or_else(|| str_of(v).and_then(parse_time_ms))
}

impl Normalizer for Waf {
    fn kind(&self) -> &'static str {
        "waf"
    }

    fn append(&mut self, v: &BorrowedValue<'_>, _origin: &Origin) -> Result<(), String> {
        if get(v, "Request").is_some() && get(v, "httpRequest").is_none() {
            return self.sampled(v);
        }
        let req = get(v, "httpRequest").filter(|r| matches!(r, BorrowedValue::Object(_))).ok_or("not a WAF log record: no httpRequest object")?;
        let time = super::time::admit(record_time(get(v, "timestamp")).ok_or("not a WAF log record: no timestamp (epoch ms or RFC 3339)")?)?;
        let acl = str_of(get(v, "webaclId")).ok_or("not a WAF log record: no webaclId")?;
        // OCSF HTTP Activity needs the request or the response. AWS WAF's own logs always carry
        // the request's URI and method; a fragment with neither (hand-made test events) cannot
        // be HTTP Activity, and is kept whole in the dead letters instead.
        let has = |o: &BorrowedValue<'_>, k: &str| get(o, k).is_some_and(|x| !crate::json::is_null(x) && !matches!(x, BorrowedValue::Array(a) if a.is_empty()));
        if !["uri", "httpMethod", "httpVersion", "requestId", "args", "headers"].iter().any(|k| has(req, k)) && !has(v, "responseCodeSent") {
            return Err("incomplete WAF log record: httpRequest has no uri, httpMethod, httpVersion, requestId, args or headers, and there is no responseCodeSent (OCSF HTTP Activity needs the request or the response)".into());
        }
        let (w, h, c) = (&mut self.cw.writer, &self.head, &self.http);
        let method = str_of(get(req, "httpMethod"));
        let activity = method.map_or(0, method_activity);
        h.classify(w, self.cw.class, activity, if activity == 99 { method } else { None });
        h.time(w, time);
        h.severity(w, 1);
        if let Some(t) = str_of(get(v, "timestamp")) {
            w.str(h.md_original_time, t);
        }
        h.product(w, "AWS WAF", "AWS", &["cloud", "security_control"]);
        w.str(h.md_log_provider, "AWS WAF");
        w.str(h.md_feature, "Web ACL");
        if let Some(n) = i64_of(get(v, "formatVersion")) {
            let n = n.to_string();
            w.str(h.md_log_version, &n);
            w.str(h.md_product_version, &n);
        }
        if let Some(BorrowedValue::Array(labels)) = get(v, "labels") {
            for l in labels.iter() {
                if let Some(name) = str_of(get(l, "name")) {
                    w.push_str(h.md_labels, name);
                }
            }
        }

        // The web ACL: the policy that decided, and where the lake partitions the event.
        let arn = parse_arn(acl);
        h.aws(w, arn.as_ref().map(|a| a.region), arn.as_ref().map(|a| a.account));
        w.str(c.md_feature_uid, acl);
        w.str(c.policy_uid, acl);
        // arn:...:regional/webacl/NAME/ID
        if let Some(name) = arn.as_ref().and_then(|a| a.resource.split('/').nth(2)) {
            w.str(c.policy_name, name);
        }

        // What was done.
        let act = str_of(get(v, "action")).unwrap_or("");
        if !act.is_empty() {
            write_action(w, c, act);
        }
        let rule = str_of(get(v, "terminatingRuleId"));
        write_rule(w, c, v, rule);

        // Who asked.
        let ip = str_of(get(req, "clientIp"));
        if let Some(ip) = ip {
            w.str(c.src_ip, ip);
        }
        if let Some(cc) = str_of(get(req, "country")).filter(|s| !s.is_empty() && *s != "-") {
            w.str(c.src_country, cc);
        }
        let source_id = str_of(get(v, "httpSourceId"));
        if let Some(s) = str_of(get(v, "httpSourceName")) {
            w.str(c.src_svc, s);
        }
        if let Some(s) = source_id.filter(|s| *s != "-") {
            w.str(c.src_uid, s);
        }

        // The request.
        if let Some(m) = method {
            w.str(c.method, m);
        }
        for (col, key) in [(c.version, "httpVersion"), (c.req_uid, "requestId")] {
            if let Some(s) = str_of(get(req, key)) {
                w.str(col, s);
            }
        }
        let args = str_of(get(req, "args")).unwrap_or("");
        if !args.is_empty() {
            w.str(c.args, args);
            w.str(c.url_query, args);
        }
        let uri = str_of(get(req, "uri"));
        if let Some(u) = uri {
            w.str(c.url_path, u);
        }
        // The host is the Host header the client sent; `httpRequest.host` (newer logs) only
        // stands in when there is none, and stays in `unmapped` either way.
        let host = write_headers(w, c, get(req, "headers"), ("name", "value"));
        let host = host.or_else(|| str_of(get(req, "host")).filter(|s| !s.is_empty()));
        let scheme = str_of(get(req, "scheme")).filter(|s| !s.is_empty());
        if let Some(hn) = host {
            w.str(c.url_host, hn);
        }
        if let Some(s) = scheme {
            w.str(c.url_scheme, s);
        }
        if let (Some(s), Some(hn), Some(u)) = (scheme, host, uri.filter(|u| u.starts_with('/'))) {
            let mut full = format!("{s}://{hn}{u}");
            if !args.is_empty() {
                full.push('?');
                full.push_str(args);
            }
            w.str(c.url_string, &full);
        }
        if let Some(code) = i64_of(get(v, "responseCodeSent")).and_then(|n| i32::try_from(n).ok()) {
            w.i32(c.resp_code, code);
        }

        // TLS client fingerprints. OCSF requires tls.version; JA4 carries it (`t13...` is TLS
        // 1.3 over TCP), so JA3 is mapped only beside a JA4 and otherwise stays unmapped.
        let ja4 = str_of(get(v, "ja4Fingerprint")).filter(|s| !s.is_empty());
        let tls_version = ja4.and_then(ja4_tls_version);
        let ja3 = str_of(get(v, "ja3Fingerprint")).filter(|s| !s.is_empty());
        if let Some(ver) = tls_version {
            w.str(c.tls_version, ver);
            if let Some(j) = ja3 {
                w.str(c.ja3_alg, "MD5");
                w.i32(c.ja3_alg_id, 1);
                w.str(c.ja3_value, j);
            }
        }
        if let Some(j) = ja4 {
            w.begin_item(c.ja4);
            w.str(c.ja4_type, "JA4");
            w.i32(c.ja4_type_id, 1);
            w.str(c.ja4_value, j);
            w.end_item(c.ja4);
        }

        if let Some(ip) = ip {
            h.observable(w, "src_endpoint.ip", obs::IP, ip);
        }
        if let Some(hn) = host {
            h.observable(w, "http_request.url.hostname", obs::HOSTNAME, hn);
        }
        if let Some(r) = rule {
            h.observable(w, "firewall_rule.uid", obs::RESOURCE_UID, r);
        }
        if let Some(s) = source_id.filter(|s| *s != "-") {
            h.observable(w, "src_endpoint.uid", obs::RESOURCE_UID, s);
        }

        // The JA3 hash is consumed only when it was written above.
        let mapped = if tls_version.is_some() && ja3.is_some() { &self.mapped_ja3 } else { &self.mapped };
        h.finish_row(w, v, mapped, &mut self.buf);
        Ok(())
    }

    fn buffered_rows(&self) -> usize {
        self.cw.writer.rows()
    }

    fn discard_partial(&mut self) {
        self.cw.writer.discard_row();
    }
    fn take_batches(&mut self) -> Result<Vec<OcsfBatch>, WriterError> {
        self.cw.batches()
    }
}

/// The TLS version a JA4 fingerprint records: its protocol letter, then two digits
/// (`13` = 1.3, `12` = 1.2, `s3` = SSL 3.0).
fn ja4_tls_version(ja4: &str) -> Option<&'static str> {
    match ja4.get(1..3)? {
        "13" => Some("1.3"),
        "12" => Some("1.2"),
        "11" => Some("1.1"),
        "10" => Some("1.0"),
        "s3" => Some("SSL 3.0"),
        "d1" => Some("DTLS 1.0"),
        "d2" => Some("DTLS 1.2"),
        "d3" => Some("DTLS 1.3"),
        _ => None,
    }
}

/// The terminating rule: its id and type, what matched, and the rule group or rate-based
/// rule it belongs to.
fn write_rule(w: &mut BatchWriter, c: &Http, v: &BorrowedValue<'_>, rule: Option<&str>) {
    let Some(rule) = rule else { return };
    w.str(c.fw_uid, rule);
    if let Some(t) = str_of(get(v, "terminatingRuleType")) {
        w.str(c.fw_type, t);
    }
    let mut name = rule;
    // A rule inside a rule group terminated: the group is the rule's category, the inner
    // rule its name.
    if let Some(BorrowedValue::Array(groups)) = get(v, "ruleGroupList") {
        for g in groups.iter() {
            let Some(term) = get(g, "terminatingRule").filter(|t| !is_null(t)) else { continue };
            if let Some(gid) = str_of(get(g, "ruleGroupId")) {
                w.str(c.fw_category, gid);
            }
            if let Some(inner) = str_of(get(term, "ruleId")) {
                name = inner;
            }
            break;
        }
    }
    // A rate-based rule terminated: its name and limit.
    if let Some(BorrowedValue::Array(rates)) = get(v, "rateBasedRuleList") {
        let is_it = |r: &BorrowedValue<'_>| str_of(get(r, "rateBasedRuleName")) == Some(rule) || str_of(get(r, "rateBasedRuleId")) == Some(rule);
        if let Some(r) = rates.iter().find(|r| is_it(r)) {
            if let Some(n) = str_of(get(r, "rateBasedRuleName")) {
                name = n;
            }
            if let Some(limit) = i64_of(get(r, "maxRateAllowed")).and_then(|n| i32::try_from(n).ok()) {
                w.i32(c.fw_rate_limit, limit);
            }
        }
    }
    w.str(c.fw_name, name);
    if let Some(BorrowedValue::Array(details)) = get(v, "terminatingRuleMatchDetails") {
        if let Some(first) = details.first() {
            for (col, key) in [(c.fw_condition, "conditionType"), (c.fw_location, "location"), (c.fw_sensitivity, "sensitivityLevel")] {
                if let Some(s) = str_of(get(first, key)) {
                    w.str(col, s);
                }
            }
        }
        for d in details.iter() {
            if let Some(BorrowedValue::Array(data)) = get(d, "matchedData") {
                for m in data.iter().filter_map(|m| str_of(Some(m))) {
                    w.push_str(c.fw_details, m);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_actions_and_ja4() {
        assert_eq!(method_activity("GET"), 3);
        assert_eq!(method_activity("patch"), 9);
        assert_eq!(method_activity("PROPFIND"), 99);
        assert_eq!(action("BLOCK"), (2, "Denied", 2, "Blocked"));
        assert_eq!(action("COUNT").2, 20);
        assert_eq!(ja4_tls_version("t13d1812h1_91b4e2f43a96_a791466c72b5"), Some("1.3"));
        assert_eq!(ja4_tls_version("x"), None);
    }
}
