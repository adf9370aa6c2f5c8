//! Small helpers shared by signers, the simulator and the pipeline: RFC 3986 percent-encoding,
//! UTC date formatting without a date crate, FNV-1a hashing and random nonces.

/// Percent-encode per RFC 3986: unreserved `A-Z a-z 0-9 - _ . ~` stay, everything else `%XY`.
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    percent_encode_into(&mut out, s);
    out
}

/// [`percent_encode`], borrowing `s` when nothing in it needs escaping (parameter names, IDs,
/// numbers): the canonical query of every signed call encodes each parameter.
pub fn percent_encoded(s: &str) -> std::borrow::Cow<'_, str> {
    if s.bytes().all(is_unreserved) {
        std::borrow::Cow::Borrowed(s)
    } else {
        std::borrow::Cow::Owned(percent_encode(s))
    }
}

/// An RFC 3986 unreserved byte, which percent-encoding leaves as it is.
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~')
}

/// [`percent_encode`] appending to `out`. Signing encodes every query parameter twice (the
/// canonical request and the URL), so this allocates nothing per escaped byte.
fn percent_encode_into(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for b in s.bytes() {
        if is_unreserved(b) {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 0xF)] as char);
        }
    }
}

/// Percent-encode a path: like [`percent_encode`] but `/` stays.
pub fn percent_encode_path(s: &str) -> String {
    s.split('/')
        .map(percent_encode)
        .collect::<Vec<_>>()
        .join("/")
}

/// Decode `%XY` escapes (and `+` as space when `plus_is_space`); invalid escapes stay literal.
pub fn percent_decode(s: &str, plus_is_space: bool) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = |c: u8| (c as char).to_digit(16);
                match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 3;
                        continue;
                    }
                    _ => out.push(b'%'),
                }
            }
            b'+' if plus_is_space => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parse `a=1&b=2` into decoded pairs, in order.
pub fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (percent_decode(k, true), percent_decode(v, true)),
            None => (percent_decode(p, true), String::new()),
        })
        .collect()
}

/// Build `k=v&...` with both sides percent-encoded, in the given order.
pub fn encode_query(pairs: &[(String, String)]) -> String {
    let mut out = String::with_capacity(pairs.iter().map(|(k, v)| k.len() + v.len() + 2).sum());
    for (k, v) in pairs {
        if !out.is_empty() {
            out.push('&');
        }
        percent_encode_into(&mut out, k);
        out.push('=');
        percent_encode_into(&mut out, v);
    }
    out
}

/// The canonical query string of the V3/TC3/SigV4 family: pairs RFC 3986-encoded, sorted by
/// name then value, `k=v` joined by `&`.
pub fn canonical_query(params: &[(String, String)]) -> String {
    let mut enc: Vec<(std::borrow::Cow<'_, str>, std::borrow::Cow<'_, str>)> = params
        .iter()
        .map(|(k, v)| (percent_encoded(k), percent_encoded(v)))
        .collect();
    enc.sort();
    let len = enc.iter().map(|(k, v)| k.len() + v.len() + 2).sum();
    let mut out = String::with_capacity(len);
    for (k, v) in &enc {
        if !out.is_empty() {
            out.push('&');
        }
        out.push_str(k);
        out.push('=');
        out.push_str(v);
    }
    out
}

/// A broken-down UTC time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UtcTime {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
}

impl UtcTime {
    /// From Unix seconds (proleptic Gregorian calendar; Howard Hinnant's civil-from-days).
    pub fn from_unix(secs: i64) -> UtcTime {
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400);
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = yoe + era * 400 + i64::from(month <= 2);
        UtcTime {
            year,
            month,
            day,
            hour: (rem / 3600) as u32,
            minute: (rem % 3600 / 60) as u32,
            second: (rem % 60) as u32,
        }
    }

    /// Unix seconds of this time.
    pub fn to_unix(&self) -> i64 {
        let y = self.year - i64::from(self.month <= 2);
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let m = i64::from(self.month);
        let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(self.day) - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        let days = era * 146_097 + doe - 719_468;
        days * 86_400
            + i64::from(self.hour) * 3600
            + i64::from(self.minute) * 60
            + i64::from(self.second)
    }

    /// `2025-01-01T00:00:00Z` (ISO 8601, as Aliyun's x-acs-date).
    pub fn iso8601(&self) -> String {
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }

    /// `20250101T000000Z` (basic format, as x-oss-date and x-amz-date).
    pub fn basic(&self) -> String {
        format!(
            "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }

    /// `20250101`.
    pub fn date_basic(&self) -> String {
        format!("{:04}{:02}{:02}", self.year, self.month, self.day)
    }

    /// Parse `YYYY-MM-DDThh:mm:ssZ`.
    pub fn parse_iso8601(s: &str) -> Option<UtcTime> {
        let b = s.as_bytes();
        if b.len() != 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[19] != b'Z' {
            return None;
        }
        let n = |r: std::ops::Range<usize>| s.get(r)?.parse::<u32>().ok();
        Some(UtcTime {
            year: i64::from(n(0..4)?),
            month: n(5..7)?,
            day: n(8..10)?,
            hour: n(11..13)?,
            minute: n(14..16)?,
            second: n(17..19)?,
        })
    }

    /// Parse `YYYYMMDDThhmmssZ`.
    pub fn parse_basic(s: &str) -> Option<UtcTime> {
        let b = s.as_bytes();
        if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
            return None;
        }
        let n = |r: std::ops::Range<usize>| s.get(r)?.parse::<u32>().ok();
        Some(UtcTime {
            year: i64::from(n(0..4)?),
            month: n(4..6)?,
            day: n(6..8)?,
            hour: n(9..11)?,
            minute: n(11..13)?,
            second: n(13..15)?,
        })
    }
}

/// FNV-1a, 32 bit.
pub fn fnv1a32(data: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in data {
        h ^= u32::from(*b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// 32 random hex characters, for signature nonces and request ids.
pub fn random_hex() -> String {
    format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..))
}

/// `host[:port]` of a base URL.
pub fn host_of(base: &str) -> String {
    let rest = base
        .strip_prefix("https://")
        .or_else(|| base.strip_prefix("http://"))
        .unwrap_or(base);
    rest.split('/').next().unwrap_or(rest).to_string()
}

/// A JSON scalar as a string (`"60"` and `60` both give "60").
pub fn value_string(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// What identifies a file's content cheaply: its path, modification time and length (both unset
/// when it cannot be read). `metadata` follows symlinks, so a Kubernetes ConfigMap's swap of its
/// `..data` link shows as a change of the file it points to.
pub type FileStamp = (std::path::PathBuf, Option<std::time::SystemTime>, u64);

/// The stamps of `files`, to compare with an earlier call and see whether any changed.
pub fn file_stamps(files: &[std::path::PathBuf]) -> Vec<FileStamp> {
    files
        .iter()
        .map(|p| match std::fs::metadata(p) {
            Ok(m) => (p.clone(), m.modified().ok(), m.len()),
            Err(_) => (p.clone(), None, 0),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_encoding_follows_rfc3986() {
        assert_eq!(
            percent_encode("a b*c~d+e/é!'()"),
            "a%20b%2Ac~d%2Be%2F%C3%A9%21%27%28%29"
        );
        assert_eq!(percent_decode("a%20b%2Ac+d", true), "a b*c d");
        assert_eq!(percent_decode("100%", false), "100%");
        let pairs = [
            ("b".to_string(), "x y".to_string()),
            ("a".to_string(), "[{\"k\":1}]".to_string()),
            ("c".to_string(), String::new()),
        ];
        assert_eq!(encode_query(&pairs), "b=x%20y&a=%5B%7B%22k%22%3A1%7D%5D&c=");
        assert_eq!(
            canonical_query(&pairs),
            "a=%5B%7B%22k%22%3A1%7D%5D&b=x%20y&c="
        );
        assert_eq!(canonical_query(&[]), "");
        // Sorted by the encoded names: `%C3%A9` before `~`, though `é` sorts after `~`.
        let pairs = [
            ("~".to_string(), "1".to_string()),
            ("é".to_string(), "2".to_string()),
        ];
        assert_eq!(canonical_query(&pairs), "%C3%A9=2&~=1");
        assert!(matches!(
            percent_encoded("Az09-_.~"),
            std::borrow::Cow::Borrowed("Az09-_.~")
        ));
        assert!(matches!(percent_encoded("a b"), std::borrow::Cow::Owned(s) if s == "a%20b"));
    }

    #[test]
    fn utc_round_trips() {
        let t = UtcTime::from_unix(1_735_689_600);
        assert_eq!(t.iso8601(), "2025-01-01T00:00:00Z");
        assert_eq!(t.to_unix(), 1_735_689_600);
        let t = UtcTime::from_unix(1_702_743_657);
        assert_eq!(t.basic(), "20231216T162057Z");
        assert_eq!(UtcTime::parse_basic("20231216T162057Z"), Some(t));
        assert_eq!(UtcTime::parse_iso8601(&t.iso8601()), Some(t));
        assert_eq!(
            UtcTime::from_unix(951_782_400).iso8601(),
            "2000-02-29T00:00:00Z"
        );
    }

    #[test]
    fn fnv1a32_matches_reference_values() {
        assert_eq!(fnv1a32(b""), 0x811c_9dc5);
        assert_eq!(fnv1a32(b"a"), 0xe40c_292c);
        assert_eq!(fnv1a32(b"foobar"), 0xbf9c_f968);
    }
}
