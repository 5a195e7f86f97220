//! RFC 3339 timestamps to epoch milliseconds. The fixed CloudTrail form
//! (`2023-09-21T22:22:52Z`, optionally with fractional seconds) takes a fast path; anything
//! else goes through chrono.

/// Epoch milliseconds of an RFC 3339 timestamp, or `None` if it is not one.
pub fn parse_rfc3339_ms(s: &str) -> Option<i64> {
    fast(s.as_bytes()).or_else(|| chrono::DateTime::parse_from_rfc3339(s).ok().map(|d| d.timestamp_millis()))
}

fn fast(b: &[u8]) -> Option<i64> {
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' || *b.last()? != b'Z' {
        return None;
    }
    let n = |r: std::ops::Range<usize>| -> Option<i64> {
        b[r].iter().try_fold(0i64, |acc, &c| c.is_ascii_digit().then(|| acc * 10 + (c - b'0') as i64))
    };
    let (y, mo, d, h, mi, s) = (n(0..4)?, n(5..7)?, n(8..10)?, n(11..13)?, n(14..16)?, n(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let mut ms = 0;
    let rest = &b[19..b.len() - 1];
    if !rest.is_empty() {
        if rest[0] != b'.' || rest.len() < 2 || !rest[1..].iter().all(u8::is_ascii_digit) {
            return None;
        }
        let digits = &rest[1..rest.len().min(4)];
        ms = digits.iter().fold(0i64, |a, c| a * 10 + (c - b'0') as i64) * 10i64.pow(3 - digits.len() as u32);
    }
    Some((days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s) * 1000 + ms)
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
        for s in ["2023-09-21T22:22:52Z", "2019-01-01T00:00:00Z", "2024-02-29T23:59:59.5Z", "1999-12-31T23:59:59.123Z", "2024-08-01T13:29:57.123456Z"] {
            let want = chrono::DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis();
            assert_eq!(fast(s.as_bytes()), Some(want), "{s}");
        }
        assert_eq!(parse_rfc3339_ms("2023-09-21T18:22:52.000-04:00"), Some(1695334972000));
        assert_eq!(parse_rfc3339_ms("2023-09-21"), None);
        assert_eq!(parse_rfc3339_ms("2023-13-21T22:22:52Z"), None);
        assert_eq!(event_day(1695334972000), "20230921");
    }
}
