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
/// reads as empty. Clouds write dimension values and periods as strings in one answer and
/// numbers in another.
///
/// Up to [`Text::INLINE`] bytes are held in place rather than on the heap: dimension names and
/// values (instance IDs, UUIDs, addresses) are that short, and one allocation each was an
/// eighth of all the allocations of a large scrape.
#[derive(Clone, Default)]
pub struct Text(Repr);

#[derive(Clone)]
enum Repr {
    Inline { len: u8, bytes: [u8; Text::INLINE] },
    Heap(Box<str>),
}

impl Default for Repr {
    fn default() -> Repr {
        Repr::Inline {
            len: 0,
            bytes: [0; Text::INLINE],
        }
    }
}

impl Text {
    /// The longest text held without an allocation (a UUID is 36 bytes).
    pub const INLINE: usize = 38;

    /// The text.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            Repr::Inline { len, bytes } => {
                let bytes = &bytes[..usize::from(*len)];
                // SAFETY: `bytes` is a copy of a whole `&str` (see `From<&str>`), so it is
                // valid UTF-8.
                unsafe { std::str::from_utf8_unchecked(bytes) }
            }
            Repr::Heap(s) => s,
        }
    }

    /// The text as an owned string.
    pub fn into_string(self) -> String {
        match self.0 {
            Repr::Heap(s) => s.into_string(),
            Repr::Inline { .. } => self.as_str().to_owned(),
        }
    }
}

impl From<&str> for Text {
    fn from(s: &str) -> Text {
        match u8::try_from(s.len()) {
            Ok(len) if usize::from(len) <= Text::INLINE => {
                let mut bytes = [0; Text::INLINE];
                bytes[..s.len()].copy_from_slice(s.as_bytes());
                Text(Repr::Inline { len, bytes })
            }
            _ => Text(Repr::Heap(s.into())),
        }
    }
}

impl From<String> for Text {
    fn from(s: String) -> Text {
        if s.len() <= Text::INLINE {
            Text::from(s.as_str())
        } else {
            Text(Repr::Heap(s.into_boxed_str()))
        }
    }
}

impl std::ops::Deref for Text {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl PartialEq for Text {
    fn eq(&self, other: &Text) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Text {}

impl std::hash::Hash for Text {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state)
    }
}

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Text, D::Error> {
        struct TextVisitor;
        impl<'de> Visitor<'de> for TextVisitor {
            type Value = Text;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string, number, boolean or null")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Text, E> {
                Ok(Text::from(v))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Text, E> {
                Ok(Text::from(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Text, E> {
                Ok(Text::from(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Text, E> {
                Ok(Text::from(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Text, E> {
                Ok(Text::from(v.to_string()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Text, E> {
                Ok(Text::from(if v { "true" } else { "false" }))
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

/// The points one series' answer usually carries, held in place by the answer types: a window
/// of one period plus the ingestion delay (120 s by default) is three or four points of a
/// 60 s period, and fewer of a longer one. A longer list moves to the heap.
pub const WINDOW_POINTS: usize = 4;

/// Reads a list whose elements are themselves lenient; `null` or a value that is not a list
/// reads as empty. For `#[serde(default, deserialize_with = "wire::list")]`, into a `Vec` or,
/// for the few points of one series, a `SmallVec` that holds them without an allocation.
pub fn list<'de, D, T, C>(d: D) -> Result<C, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
    // `IntoIterator` names the element type (a `Vec` extends from references too).
    C: Default + Extend<T> + IntoIterator<Item = T>,
{
    d.deserialize_any(ListVisitor::<T, T, C> {
        keep: Some,
        _types: PhantomData,
    })
}

/// Reads a list of objects, skipping entries that are not objects; `null` or a value that is
/// not a list reads as empty. For `#[serde(default, deserialize_with = "wire::objects")]`, into
/// a `Vec` or a `SmallVec`.
pub fn objects<'de, D, T, C>(d: D) -> Result<C, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
    // `IntoIterator` names the element type (a `Vec` extends from references too).
    C: Default + Extend<T> + IntoIterator<Item = T>,
{
    d.deserialize_any(ListVisitor::<ObjectOrNot<T>, T, C> {
        keep: |e| e.0,
        _types: PhantomData,
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

/// A list read element by element as `E` into a `C`, keeping what `keep` makes of each.
struct ListVisitor<E, T, C> {
    keep: fn(E) -> Option<T>,
    _types: PhantomData<(E, C)>,
}

impl<'de, E: Deserialize<'de>, T, C: Default + Extend<T>> Visitor<'de> for ListVisitor<E, T, C> {
    type Value = C;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<C, A::Error> {
        let mut out = C::default();
        while let Some(e) = seq.next_element::<E>()? {
            out.extend((self.keep)(e));
        }
        Ok(out)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<C, A::Error> {
        drain_map(map).map(|()| C::default())
    }
    fn visit_bool<Er: de::Error>(self, _: bool) -> Result<C, Er> {
        Ok(C::default())
    }
    fn visit_i64<Er: de::Error>(self, _: i64) -> Result<C, Er> {
        Ok(C::default())
    }
    fn visit_u64<Er: de::Error>(self, _: u64) -> Result<C, Er> {
        Ok(C::default())
    }
    fn visit_f64<Er: de::Error>(self, _: f64) -> Result<C, Er> {
        Ok(C::default())
    }
    fn visit_str<Er: de::Error>(self, _: &str) -> Result<C, Er> {
        Ok(C::default())
    }
    fn visit_unit<Er: de::Error>(self) -> Result<C, Er> {
        Ok(C::default())
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
    fn text_is_the_same_held_inline_or_on_the_heap() {
        let uuid = "0b0f4e6c-5a4e-4b8e-9f3e-2f6c1d7a9b10";
        let longest = "a".repeat(Text::INLINE);
        let longer = "a".repeat(Text::INLINE + 1);
        // Multi-byte characters around the boundary: 19 two-byte characters are 38 bytes.
        let accented = "é".repeat(19);
        for s in ["", "lb-1", uuid, &longest, &longer, &accented, "漢字"] {
            let from_str = Text::from(s);
            let from_string = Text::from(s.to_string());
            let read: Text = serde_json::from_str(&serde_json::to_string(s).unwrap()).unwrap();
            for t in [&from_str, &from_string, &read] {
                assert_eq!(t.as_str(), s);
                assert_eq!(t.clone().into_string(), s);
            }
            assert_eq!(from_str, read);
            let hash = |t: &Text| {
                use std::hash::{BuildHasher, BuildHasherDefault};
                BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default()
                    .hash_one(t)
            };
            assert_eq!(hash(&from_str), hash(&from_string));
        }
        assert!(matches!(Text::from(uuid).0, Repr::Inline { len: 36, .. }));
        assert!(matches!(
            Text::from(longest.as_str()).0,
            Repr::Inline { len: 38, .. }
        ));
        assert!(matches!(Text::from(longer.as_str()).0, Repr::Heap(_)));
        assert!(matches!(Text::from(longer).0, Repr::Heap(_)));
        assert_eq!(Text::from("a"), Text::from("a".to_string()));
        assert_ne!(Text::from("a"), Text::from("b"));
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
