//! Timestamps to epoch milliseconds: RFC 3339 (`2023-09-21T22:22:52Z`, with fractional seconds
//! or an offset), and the zone-less `2023-09-21 22:22:52[.fff]` that exports from Panther or
//! Athena write, read as UTC. Hand-parsed: this runs once per event.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// 9999-12-31T23:59:59Z: the last second an RFC 3339 time (and OCSF's `_dt` text) can name.
pub const MAX_EPOCH_SECS: f64 = 253_402_300_799.0;

/// Epoch milliseconds of a timestamp, or `None` if it is not one.
pub fn parse_time_ms(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let n = |r: std::ops::Range<usize>| -> Option<i64> { b[r].iter().try_fold(0i64, |acc, &c| c.is_ascii_digit().then(|| acc * 10 + (c - b'0') as i64)) };
    let (y, mo, d, h, mi, sec) = (n(0..4)?, n(5..7)?, n(8..10)?, n(11..13)?, n(14..16)?, n(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    let mut ms = 0;
    if b.get(i) == Some(&b'.') {
        let start = i + 1;
        i = start;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let digits = &b[start..i.min(start + 3)];
        if digits.is_empty() {
            return None;
        }
        ms = digits.iter().fold(0i64, |a, c| a * 10 + (c - b'0') as i64) * 10i64.pow(3 - digits.len() as u32);
    }
    let offset_s = match &b[i..] {
        [] | [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let two = |a: u8, b: u8| (a.is_ascii_digit() && b.is_ascii_digit()).then(|| ((a - b'0') * 10 + (b - b'0')) as i64);
            let off = two(*h1, *h2)? * 3600 + two(*m1, *m2)? * 60;
            if *sign == b'+' {
                off
            } else {
                -off
            }
        }
        _ => return None,
    };
    Some((days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + sec - offset_s) * 1000 + ms)
}

/// Default of how far ahead of the processing clock an event may be dated before it is
/// dead-lettered: one day (clock skew between AWS, agents and Ocelot is seconds to minutes; a
/// record dated much later is a broken clock or forged to move detection's watermark).
pub const DEFAULT_MAX_FUTURE_SECS: i64 = 86_400;

static MAX_FUTURE_MS: AtomicI64 = AtomicI64::new(DEFAULT_MAX_FUTURE_SECS * 1000);
/// 0: records are never too old (replays of old trails are normal).
static MAX_AGE_MS: AtomicI64 = AtomicI64::new(0);
static FAR_FUTURE: AtomicU64 = AtomicU64::new(0);
static FAR_PAST: AtomicU64 = AtomicU64::new(0);

/// Sets the bounds [`admit`] applies, for the whole process (`[time]` in the config, or the
/// command-line flags): `max_future_secs` ahead of the processing clock, `max_age_days` behind
/// it; 0 turns a bound off.
pub fn set_bounds(max_future_secs: i64, max_age_days: i64) {
    MAX_FUTURE_MS.store(max_future_secs.saturating_mul(1000), Ordering::Relaxed);
    MAX_AGE_MS.store(max_age_days.saturating_mul(86_400_000), Ordering::Relaxed);
}

/// Records refused for a time too far ahead of (`.0`) or behind (`.1`) the processing clock.
pub fn refused_counts() -> (u64, u64) {
    (FAR_FUTURE.load(Ordering::Relaxed), FAR_PAST.load(Ordering::Relaxed))
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// An event time, or the reason its record goes to the dead letters: dated further ahead of
/// the processing clock than `max_future_secs`, or older than `max_age_days`. Every normalizer
/// calls this before it writes a row.
pub fn admit(epoch_ms: i64) -> Result<i64, String> {
    let (future, age) = (MAX_FUTURE_MS.load(Ordering::Relaxed), MAX_AGE_MS.load(Ordering::Relaxed));
    if future == 0 && age == 0 {
        return Ok(epoch_ms);
    }
    let now = now_ms();
    let text = |ms: i64| chrono::DateTime::from_timestamp_millis(ms).map_or_else(|| ms.to_string(), |d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    if future > 0 && epoch_ms > now.saturating_add(future) {
        FAR_FUTURE.fetch_add(1, Ordering::Relaxed);
        let ahead = (epoch_ms - now) / 1000;
        return Err(format!("event time in the future: {} is {ahead} s ahead of the processing clock, more than time.max_future_secs = {}", text(epoch_ms), future / 1000));
    }
    if age > 0 && epoch_ms < now.saturating_sub(age) {
        FAR_PAST.fetch_add(1, Ordering::Relaxed);
        let days = (now - epoch_ms) / 86_400_000;
        return Err(format!("event time too old: {} is {days} days before the processing clock, more than time.max_age_days = {}", text(epoch_ms), age / 86_400_000));
    }
    Ok(epoch_ms)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `YYYYMMDD` of an epoch-milliseconds time, as Security Lake's `eventDay` partition.
pub fn event_day(epoch_ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(epoch_ms).map_or_else(|| "19700101".into(), |d| d.format("%Y%m%d").to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agrees_with_chrono() {
        for s in [
            "2023-09-21T22:22:52Z",
            "2019-01-01T00:00:00Z",
            "2024-02-29T23:59:59.5Z",
            "1999-12-31T23:59:59.123Z",
            "2024-08-01T13:29:57.123456Z",
            "2023-09-21T18:22:52.000-04:00",
            "2023-09-21T22:22:52+05:30",
        ] {
            let want = chrono::DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis();
            assert_eq!(parse_time_ms(s), Some(want), "{s}");
        }
        assert_eq!(parse_time_ms("2022-12-11 19:42:55"), parse_time_ms("2022-12-11T19:42:55Z"));
        assert_eq!(parse_time_ms("2025-01-20 16:52:14.000000000"), parse_time_ms("2025-01-20T16:52:14Z"));
        for bad in ["2023-09-21", "2023-13-21T22:22:52Z", "2023-09-21T22:22:52+0500", "2023-09-21T22:22:52.Z", "yesterday"] {
            assert_eq!(parse_time_ms(bad), None, "{bad}");
        }
        assert_eq!(event_day(1695334972000), "20230921");
    }

    #[test]
    fn far_future_times_are_refused_with_the_reason() {
        let now = now_ms();
        assert_eq!(admit(now + 60_000), Ok(now + 60_000));
        // A replayed 2019 trail is not too old by default.
        assert!(admit(parse_time_ms("2019-01-01T00:00:00Z").unwrap()).is_ok());
        let why = admit(parse_time_ms("2099-01-01T00:00:00Z").unwrap()).unwrap_err();
        assert!(why.starts_with("event time in the future: 2099-01-01T00:00:00Z is ") && why.contains("time.max_future_secs = 86400"), "{why}");
        assert!(refused_counts().0 >= 1);
    }
}
