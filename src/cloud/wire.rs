//! Pieces of the typed monitor answers shared by the clouds. The monitor answers are parsed
//! straight from their bytes into fixed shapes: a `serde_json::Value` tree per answer (a map
//! and a string per key of every datapoint) was most of the allocations of a large scrape.
//!
//! The shapes are lenient where a cloud's answer may be odd, because one odd value must cost
//! one point, not the whole call: scalars of an unexpected type read as absent ([`Text`],
//! [`Number`]), a list that is `null` or not a list reads as empty ([`list`]), and entries of a
//! list of objects that are not objects are skipped ([`objects`]).

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::value::MapAccessDeserializer;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

/// Whether a body is a JSON object: its first non-blank byte is `{`. serde reads a struct from
/// an array too, so an answer that is an array would otherwise pass as an empty success.
pub fn is_json_object(body: &[u8]) -> bool {
    body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
}

/// Reads and drops the rest of a list.
pub(crate) fn drain_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<IgnoredAny>()?.is_some() {}
    Ok(())
}

/// Reads and drops the rest of an object.
pub(crate) fn drain_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<(), A::Error> {
    while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
    Ok(())
}

/// A scalar read as text whatever its JSON type (`"80"` or `80`); null, a list or an object
/// reads as empty. Clouds
/// write dimension values and periods as strings in one answer and numbers in another.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Text(pub String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Text, D::Error> {
        struct TextVisitor;
        impl<'de> Visitor<'de> for TextVisitor {
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
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Text, A::Error> {
                drain_seq(seq).map(|()| Text::default())
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Text, A::Error> {
                drain_map(map).map(|()| Text::default())
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

/// Reads a scalar through `f` as text without keeping it: `f(Some(text))` for a string,
/// `f(None)` for anything else (a number, null, a list or an object, which is read and
/// dropped). For values only matched against known words, where an owned copy of each would
/// be an allocation per series.
pub fn read_str<'de, D: Deserializer<'de>, T>(
    d: D,
    f: fn(Option<&str>) -> T,
) -> Result<T, D::Error> {
    struct StrVisitor<T>(fn(Option<&str>) -> T);
    impl<'de, T> Visitor<'de> for StrVisitor<T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
            Ok((self.0)(Some(v)))
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<T, E> {
            Ok((self.0)(None))
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<T, E> {
            Ok((self.0)(None))
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<T, E> {
            Ok((self.0)(None))
        }
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<T, E> {
            Ok((self.0)(None))
        }
        fn visit_unit<E: de::Error>(self) -> Result<T, E> {
            Ok((self.0)(None))
        }
        fn visit_none<E: de::Error>(self) -> Result<T, E> {
            Ok((self.0)(None))
        }
        fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<T, A::Error> {
            drain_seq(seq).map(|()| (self.0)(None))
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
            drain_map(map).map(|()| (self.0)(None))
        }
    }
    d.deserialize_any(StrVisitor(f))
}

/// A number read leniently: a JSON number, or a string that holds one; anything else (null,
/// other text, a boolean, a list, an object) reads as none.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Number(pub Option<f64>);

impl<'de> Deserialize<'de> for Number {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Number, D::Error> {
        struct NumberVisitor;
        impl<'de> Visitor<'de> for NumberVisitor {
            type Value = Number;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Number, E> {
                Ok(Number(Some(v)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Number, E> {
                Ok(Number(Some(v as f64)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Number, E> {
                Ok(Number(Some(v as f64)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Number, E> {
                Ok(Number(v.trim().parse().ok()))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Number, E> {
                Ok(Number(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Number, E> {
                Ok(Number(None))
            }
            fn visit_none<E: de::Error>(self) -> Result<Number, E> {
                Ok(Number(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Number, A::Error> {
                drain_seq(seq).map(|()| Number(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Number, A::Error> {
                drain_map(map).map(|()| Number(None))
            }
        }
        d.deserialize_any(NumberVisitor)
    }
}

/// Reads a list whose elements are themselves lenient; `null` or a value that is not a list
/// reads as empty. For `#[serde(default, deserialize_with = "wire::list")]`.
pub fn list<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Vec<T>, D::Error> {
    d.deserialize_any(ListVisitor::<T, T> {
        keep: Some,
        _element: PhantomData,
    })
}

/// Reads a list of objects, skipping entries that are not objects; `null` or a value that is
/// not a list reads as empty. For `#[serde(default, deserialize_with = "wire::objects")]`.
pub fn objects<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Vec<T>, D::Error> {
    d.deserialize_any(ListVisitor::<ObjectOrNot<T>, T> {
        keep: |e| e.0,
        _element: PhantomData,
    })
}

/// An entry of a list of objects: `None` when it is not an object.
struct ObjectOrNot<T>(Option<T>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for ObjectOrNot<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<ObjectOrNot<T>, D::Error> {
        struct EntryVisitor<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for EntryVisitor<T> {
            type Value = ObjectOrNot<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<ObjectOrNot<T>, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map)).map(|t| ObjectOrNot(Some(t)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<ObjectOrNot<T>, A::Error> {
                drain_seq(seq).map(|()| ObjectOrNot(None))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<ObjectOrNot<T>, E> {
                Ok(ObjectOrNot(None))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<ObjectOrNot<T>, E> {
                Ok(ObjectOrNot(None))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<ObjectOrNot<T>, E> {
                Ok(ObjectOrNot(None))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<ObjectOrNot<T>, E> {
                Ok(ObjectOrNot(None))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<ObjectOrNot<T>, E> {
                Ok(ObjectOrNot(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<ObjectOrNot<T>, E> {
                Ok(ObjectOrNot(None))
            }
        }
        d.deserialize_any(EntryVisitor(PhantomData))
    }
}

/// A list read element by element as `E`, keeping what `keep` makes of each.
struct ListVisitor<E, T> {
    keep: fn(E) -> Option<T>,
    _element: PhantomData<E>,
}

impl<'de, E: Deserialize<'de>, T> Visitor<'de> for ListVisitor<E, T> {
    type Value = Vec<T>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(e) = seq.next_element::<E>()? {
            out.extend((self.keep)(e));
        }
        Ok(out)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Vec<T>, A::Error> {
        drain_map(map).map(|()| Vec::new())
    }
    fn visit_bool<Er: de::Error>(self, _: bool) -> Result<Vec<T>, Er> {
        Ok(Vec::new())
    }
    fn visit_i64<Er: de::Error>(self, _: i64) -> Result<Vec<T>, Er> {
        Ok(Vec::new())
    }
    fn visit_u64<Er: de::Error>(self, _: u64) -> Result<Vec<T>, Er> {
        Ok(Vec::new())
    }
    fn visit_f64<Er: de::Error>(self, _: f64) -> Result<Vec<T>, Er> {
        Ok(Vec::new())
    }
    fn visit_str<Er: de::Error>(self, _: &str) -> Result<Vec<T>, Er> {
        Ok(Vec::new())
    }
    fn visit_unit<Er: de::Error>(self) -> Result<Vec<T>, Er> {
        Ok(Vec::new())
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

/// A `{"Name": …, "Value": …}` dimension (Tencent, AWS); a value of any scalar type reads as
/// text.
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
        let v: Vec<Text> = serde_json::from_str(r#"[[1], {"a": 1}]"#).unwrap();
        assert_eq!(v, [Text::default(), Text::default()]);
    }

    #[test]
    fn numbers_read_numbers_and_numeric_text_and_nothing_else() {
        let v: Vec<Number> =
            serde_json::from_str(r#"[1, -2, 2.5, " 3.5 ", "x", null, true, [1], {"a": 1}]"#)
                .unwrap();
        let v: Vec<Option<f64>> = v.into_iter().map(|n| n.0).collect();
        assert_eq!(
            v,
            [
                Some(1.0),
                Some(-2.0),
                Some(2.5),
                Some(3.5),
                None,
                None,
                None,
                None,
                None
            ]
        );
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Shape {
        #[serde(default, deserialize_with = "list")]
        values: Vec<Number>,
        #[serde(default, deserialize_with = "objects")]
        entries: Vec<NameValue>,
    }

    #[test]
    fn lists_read_null_or_non_lists_as_empty_and_skip_entries_that_are_not_objects() {
        let s: Shape = serde_json::from_str(
            r#"{"values": null, "entries": [{"Name": "a", "Value": 1}, "x", 3, null, [], {"Name": "b"}]}"#,
        )
        .unwrap();
        assert!(s.values.is_empty());
        let names: Vec<(&str, &str)> = s
            .entries
            .iter()
            .map(|e| (e.name.as_str(), e.value.as_str()))
            .collect();
        assert_eq!(names, [("a", "1"), ("b", "")]);
        let s: Shape = serde_json::from_str(r#"{"values": {"a": [1]}, "entries": "x"}"#).unwrap();
        assert_eq!(
            s,
            Shape {
                values: vec![],
                entries: vec![]
            }
        );
        let s: Shape = serde_json::from_str(r#"{"values": [1, "2", null]}"#).unwrap();
        assert_eq!(
            s.values,
            [Number(Some(1.0)), Number(Some(2.0)), Number(None)]
        );
    }

    #[test]
    fn only_a_body_that_opens_with_a_brace_is_an_object() {
        assert!(is_json_object(b" \n {\"a\": 1}"));
        assert!(!is_json_object(b"[]"));
        assert!(!is_json_object(b""));
        assert!(!is_json_object(b"null"));
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
