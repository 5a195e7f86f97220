//! Timestamps to epoch milliseconds: RFC 3339 (`2023-09-21T22:22:52Z`, with fractional seconds
//! or an offset), and the zone-less `2023-09-21 22:22:52[.fff]` that exports from Panther or
//! Athena write, read as UTC. Hand-parsed: this runs once per event.

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
            if *sign == b'+' { off } else { -off }
        }
        _ => return None,
    };
    Some((days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + sec - offset_s) * 1000 + ms)
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
        for s in ["2023-09-21T22:22:52Z", "2019-01-01T00:00:00Z", "2024-02-29T23:59:59.5Z", "1999-12-31T23:59:59.123Z", "2024-08-01T13:29:57.123456Z", "2023-09-21T18:22:52.000-04:00", "2023-09-21T22:22:52+05:30"] {
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
}
