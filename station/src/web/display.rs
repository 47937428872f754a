//! Values as people read and type them: sizes (`512M`, `20G`), times in
//! UTC, percentages for capacity bars, and URL query encoding. Parsing
//! happens once, at the form; what it refuses it explains in one sentence.

/// A size in MiB for people: `512 MiB`, `1.5 GiB`, `2.0 TiB`.
pub fn mib(size: i64) -> String {
    let size = size.max(0) as f64;
    if size >= 1024.0 * 1024.0 {
        format!("{:.1} TiB", size / (1024.0 * 1024.0))
    } else if size >= 1024.0 {
        format!("{:.1} GiB", size / 1024.0)
    } else {
        format!("{size} MiB")
    }
}

/// `part` of `whole` in whole per cent, 0 to 100.
pub fn percent(part: i64, whole: i64) -> i64 {
    if whole <= 0 {
        0
    } else {
        (part.clamp(0, whole) * 100 + whole / 2) / whole
    }
}

/// Parses a size typed in a form: a whole number of MiB, or with a unit
/// `M`/`MiB`, `G`/`GiB`, `T`/`TiB` (powers of 1024, case ignored).
pub fn parse_size_mib(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let explain = || {
        format!("Size {t:?} is not a size: give a whole number with M, G or T, like 512M or 20G.")
    };
    let number: u64 = digits.parse().map_err(|_| explain())?;
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "m" | "mb" | "mib" => 1,
        "g" | "gb" | "gib" => 1024,
        "t" | "tb" | "tib" => 1024 * 1024,
        _ => return Err(explain()),
    };
    let size = number.checked_mul(factor).ok_or_else(explain)?;
    if size == 0 {
        return Err("Size must be at least 1 MiB.".to_owned());
    }
    Ok(size)
}

/// Days since 1970-01-01 of a civil date (proleptic Gregorian).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day count since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Unix seconds as `2026-04-14 10:22:03 UTC`.
pub fn time(unix: i64) -> String {
    let (y, m, d) = civil_from_days(unix.div_euclid(86_400));
    let s = unix.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// Unix seconds as a `datetime-local` input's value (UTC, minutes).
pub fn datetime_input(unix: i64) -> String {
    let (y, m, d) = civil_from_days(unix.div_euclid(86_400));
    let s = unix.rem_euclid(86_400);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}", s / 3600, s / 60 % 60)
}

/// Parses `YYYY-MM-DD`, `YYYY-MM-DDTHH:MM` or `YYYY-MM-DD HH:MM[:SS]`,
/// taken as UTC, to Unix seconds.
pub fn parse_datetime(text: &str) -> Option<i64> {
    let t = text.trim();
    let (date, clock) = match t.split_once(['T', ' ']) {
        Some((d, c)) => (d, c),
        None => (t, "00:00"),
    };
    let mut date_parts = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, d) = (
        date_parts.next()??,
        date_parts.next()??,
        date_parts.next()??,
    );
    if date_parts.next().is_some() || !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let mut clock_parts = clock.split(':').map(|p| p.parse::<i64>().ok());
    let h = clock_parts.next()??;
    let min = clock_parts.next()??;
    let sec = clock_parts.next().unwrap_or(Some(0))?;
    if !(0..24).contains(&h) || !(0..60).contains(&min) || !(0..61).contains(&sec) {
        return None;
    }
    Some(days_from_civil(y, m, d) * 86_400 + h * 3600 + min * 60 + sec)
}

/// Percent-encodes a query or path value (RFC 3986 unreserved kept).
pub fn url_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The DNS domain of a unit's name (`san1.example.org` → `example.org`),
/// or `—` for a bare name.
pub fn domain_of(name: &str) -> String {
    match name.split_once('.') {
        Some((_, domain)) if !domain.is_empty() => domain.to_owned(),
        _ => "—".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_units_and_refuse_the_rest() {
        assert_eq!(parse_size_mib("512"), Ok(512));
        assert_eq!(parse_size_mib("512M"), Ok(512));
        assert_eq!(parse_size_mib(" 20 GiB "), Ok(20 * 1024));
        assert_eq!(parse_size_mib("2t"), Ok(2 * 1024 * 1024));
        for bad in ["12Q", "", "G", "1.5G", "-3", "99999999999999999999T"] {
            assert!(parse_size_mib(bad).is_err(), "{bad}");
        }
        assert!(parse_size_mib("12Q").unwrap_err().contains("12Q"));
        assert!(parse_size_mib("0").is_err());
    }

    #[test]
    fn sizes_read_well() {
        assert_eq!(mib(512), "512 MiB");
        assert_eq!(mib(1536), "1.5 GiB");
        assert_eq!(mib(2 * 1024 * 1024), "2.0 TiB");
        assert_eq!(percent(1, 3), 33);
        assert_eq!(percent(5, 0), 0);
        assert_eq!(percent(7, 5), 100);
    }

    #[test]
    fn times_round_trip_through_the_calendar() {
        assert_eq!(time(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(time(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(time(1_776_162_123), "2026-04-14 10:22:03 UTC");
        assert_eq!(parse_datetime("2026-04-14T10:22"), Some(1_776_162_120));
        assert_eq!(parse_datetime("2026-04-14 10:22:03"), Some(1_776_162_123));
        assert_eq!(parse_datetime("2000-02-29"), Some(951_782_400));
        assert_eq!(datetime_input(1_776_162_123), "2026-04-14T10:22");
        assert_eq!(parse_datetime("yesterday"), None);
        assert_eq!(parse_datetime("2026-13-01"), None);
    }

    #[test]
    fn query_values_are_encoded() {
        assert_eq!(
            url_encode("/volumes/a b?x=1&y"),
            "/volumes/a%20b%3Fx%3D1%26y"
        );
        assert_eq!(domain_of("san1.example.org"), "example.org");
        assert_eq!(domain_of("san1"), "—");
    }
}
