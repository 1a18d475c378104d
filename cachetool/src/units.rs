//! Sizes (`500M`, `2G`, `4096`) and ages (`30d`, `12h`, `90min`, `45s`,
//! `2w`) as people write them, and back.

/// Bytes in `text`: a number with an optional K, M, G or T suffix (powers
/// of 1024; a trailing `B` or `iB` is allowed).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let t = t.strip_suffix("iB").or_else(|| t.strip_suffix('B')).unwrap_or(t);
    let (digits, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
    let n: u64 = digits.parse().map_err(|_| format!("bad size '{text}' (try 500M, 2G, 4096)"))?;
    let mult: u64 = match unit.to_ascii_uppercase().as_str() {
        "" => 1,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        "T" => 1 << 40,
        _ => return Err(format!("bad size '{text}' (units: K, M, G, T)")),
    };
    n.checked_mul(mult).ok_or_else(|| format!("size '{text}' is too large"))
}

/// Seconds in `text`: a number with a unit s, min, h, d or w. A bare `m`
/// is refused: minutes or months is a guess a prune must not make.
pub fn parse_age(text: &str) -> Result<i64, String> {
    let t = text.trim();
    let (digits, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
    let n: i64 = digits.parse().map_err(|_| format!("bad age '{text}' (try 30d, 12h, 90min)"))?;
    let mult = match unit {
        "s" => 1,
        "min" => 60,
        "m" => return Err(format!("ambiguous age '{text}': write {digits}min for minutes or {}d for months", n * 30)),
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(format!("bad age '{text}' (units: s, min, h, d, w)")),
    };
    n.checked_mul(mult).ok_or_else(|| format!("age '{text}' is too large"))
}

/// `bytes` as [`parse_size`] reads it back: `2G`, `500M`, `4096`.
pub fn human_size_exact(bytes: u64) -> String {
    for (shift, unit) in [(40, "T"), (30, "G"), (20, "M"), (10, "K")] {
        if bytes != 0 && bytes % (1 << shift) == 0 {
            return format!("{}{unit}", bytes >> shift);
        }
    }
    bytes.to_string()
}

/// `bytes` for people: `812 B`, `4.0 KiB`, `12.3 MiB`.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// How long ago `then` (Unix seconds) was, from `now`: `just now`, `5min ago`,
/// `3h ago`, `12d ago`; `never` for None.
pub fn human_age(then: Option<i64>, now: i64) -> String {
    let Some(then) = then else { return "never".into() };
    let s = (now - then).max(0);
    match s {
        0..=59 => "just now".into(),
        60..=3599 => format!("{}min ago", s / 60),
        3600..=86_399 => format!("{}h ago", s / 3600),
        _ => format!("{}d ago", s / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_ages() {
        assert_eq!(parse_size("500M"), Ok(500 << 20));
        assert_eq!(parse_size("2G"), Ok(2 << 30));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("1KiB"), Ok(1024));
        assert!(parse_size("5X").is_err());
        assert!(parse_size("M").is_err());
        for n in [2 << 30, 500 << 20, 4096, 1000, 0] {
            assert_eq!(parse_size(&human_size_exact(n)), Ok(n));
        }
        assert_eq!(parse_age("30d"), Ok(30 * 86_400));
        assert_eq!(parse_age("90min"), Ok(5400));
        assert!(parse_age("90m").unwrap_err().contains("ambiguous"));
        assert!(parse_age("30").is_err());
        assert_eq!(human_size(812), "812 B");
        assert_eq!(human_size(4096), "4.0 KiB");
        assert_eq!(human_age(Some(100), 100 + 7200), "2h ago");
        assert_eq!(human_age(None, 0), "never");
    }
}
