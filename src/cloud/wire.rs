//! Pieces of the typed monitor answers shared by the clouds. The monitor answers are parsed
//! straight from their bytes into fixed shapes: a `serde_json::Value` tree per answer (a map
//! and a string per key of every datapoint) was most of the allocations of a large scrape.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

/// A scalar read as text whatever its JSON type (`"80"` or `80`); null reads as empty. Clouds
/// write dimension values and periods as strings in one answer and numbers in another.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Text(pub String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Text, D::Error> {
        struct TextVisitor;
        impl Visitor<'_> for TextVisitor {
            type Value = Text;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string, number, boolean or null")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Text, E> {
                Ok(Text(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Text, E> {
                Ok(Text(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Text, E> {
                Ok(Text::default())
            }
            fn visit_none<E: de::Error>(self) -> Result<Text, E> {
                Ok(Text::default())
            }
        }
        d.deserialize_any(TextVisitor)
    }
}

impl Text {
    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An object key, borrowed from the answer when it has no escapes (serde's own `Cow<str>`
/// always copies).
pub struct Key<'de>(pub Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Key<'de>, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object key")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

/// A `{"Name": …, "Value": …}` dimension (Tencent, AWS).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct NameValue {
    /// Dimension name.
    #[serde(default)]
    pub name: Text,
    /// Dimension value.
    #[serde(default)]
    pub value: Text,
}

/// The newest point whose period has ended and whose value is finite: what a scrape exports.
pub fn newest_complete(
    points: impl IntoIterator<Item = (i64, f64)>,
    period_ms: i64,
    now_ms: i64,
) -> Option<(i64, f64)> {
    points
        .into_iter()
        .filter(|(t, v)| v.is_finite() && t.saturating_add(period_ms) <= now_ms)
        .max_by_key(|(t, _)| *t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_reads_any_scalar() {
        let v: Vec<Text> = serde_json::from_str(r#"["a", 80, -1, 1.5, true, null]"#).unwrap();
        let v: Vec<&str> = v.iter().map(Text::as_str).collect();
        assert_eq!(v, ["a", "80", "-1", "1.5", "true", ""]);
        assert!(serde_json::from_str::<Text>("[1]").is_err());
    }

    #[test]
    fn keys_without_escapes_are_borrowed() {
        let mut de = serde_json::Deserializer::from_str(r#""plain""#);
        assert!(matches!(
            Key::deserialize(&mut de).unwrap().0,
            Cow::Borrowed("plain")
        ));
        let mut de = serde_json::Deserializer::from_str(r#""a\"b""#);
        assert!(matches!(Key::deserialize(&mut de).unwrap().0, Cow::Owned(s) if s == "a\"b"));
    }

    #[test]
    fn the_newest_complete_point_skips_open_periods_and_gaps() {
        let pts = [(60_000, 1.5), (120_000, 2.5), (180_000, 9.0), (0, f64::NAN)];
        assert_eq!(newest_complete(pts, 60_000, 240_000), Some((180_000, 9.0)));
        assert_eq!(newest_complete(pts, 60_000, 239_999), Some((120_000, 2.5)));
        assert_eq!(newest_complete([], 60_000, 240_000), None);
    }
}
