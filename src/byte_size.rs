//! Sizes as people write them: `512M`, `10G`, `1.5T`, `4096` (bytes).
//! Binary units (K = 1024), case-insensitive, an optional `iB`/`B` suffix.

/// Parses a size into bytes; the error says what is wrong with the text.
pub fn parse(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let bad = || format!("{text:?} is not a size like 512M, 10G or 1T");
    let lower = t.to_ascii_lowercase();
    let body = lower
        .strip_suffix("ib")
        .or_else(|| lower.strip_suffix('b'))
        .unwrap_or(&lower);
    let (number, shift) = match body.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let shift = match c {
                'k' => 10,
                'm' => 20,
                'g' => 30,
                't' => 40,
                'p' => 50,
                _ => return Err(bad()),
            };
            (&body[..i], shift)
        }
        Some(_) => (body, 0),
        None => return Err(bad()),
    };
    if number.is_empty() || !number.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err(bad());
    }
    let value: f64 = number.parse().map_err(|_| bad())?;
    let bytes =
        value * f64::from(1u32 << shift.min(30)) * f64::from(1u32 << (shift - shift.min(30)));
    if !bytes.is_finite() || bytes >= u64::MAX as f64 {
        return Err(format!("{text:?} is too large"));
    }
    if bytes.fract() != 0.0 {
        return Err(format!("{text:?} is not a whole number of bytes"));
    }
    Ok(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn sizes_parse_in_binary_units() {
        assert_eq!(parse("4096"), Ok(4096));
        assert_eq!(parse("512M"), Ok(512 << 20));
        assert_eq!(parse("10G"), Ok(10 << 30));
        assert_eq!(parse("10GiB"), Ok(10 << 30));
        assert_eq!(parse("1.5t"), Ok(3 << 39));
        assert_eq!(parse("64k"), Ok(64 << 10));
    }

    #[test]
    fn nonsense_is_refused_with_the_text() {
        for bad in ["", "12Q", "G", "-1G", "1..2G", "ten", "0.3"] {
            let e = parse(bad).unwrap_err();
            assert!(e.contains(&format!("{bad:?}")), "{e}");
        }
    }
}
