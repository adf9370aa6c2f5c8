//! The bucket listing every object store answers in the same XML shape
//! (`ListAllMyBucketsResult`: Aliyun OSS ListBuckets, Tencent COS GetService), and the XML error
//! body they share (`<Error><Code>…`).

/// One page of ListBuckets.
#[derive(Debug, Default, PartialEq)]
pub struct BucketPage {
    /// (name, region) of each bucket.
    pub buckets: Vec<(String, String)>,
    /// More pages follow.
    pub truncated: bool,
    /// Marker of the next page.
    pub next_marker: Option<String>,
}

/// Parse the ListBuckets XML (`ListAllMyBucketsResult`).
pub fn parse_list_buckets(xml: &[u8]) -> Result<BucketPage, String> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_reader(xml);
    let mut page = BucketPage::default();
    let mut path: Vec<String> = Vec::new();
    let mut name = String::new();
    let mut region = String::new();
    let mut location = String::new();
    let mut buf = Vec::new();
    let mut saw_root = false;
    let mut closed_root = false;
    loop {
        match reader.read_event_into(&mut buf) {
            Ok(Event::Start(e)) => {
                let tag = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                if tag == "ListAllMyBucketsResult" {
                    saw_root = true;
                }
                if tag == "Bucket" {
                    name.clear();
                    region.clear();
                    location.clear();
                }
                path.push(tag);
            }
            Ok(Event::End(e)) => {
                if e.name().as_ref() == b"ListAllMyBucketsResult" {
                    closed_root = true;
                }
                if path.last().map(String::as_str) == Some("Bucket") && !name.is_empty() {
                    let r = if region.is_empty() {
                        location.trim_start_matches("oss-").to_string()
                    } else {
                        region.clone()
                    };
                    page.buckets.push((name.clone(), r));
                }
                path.pop();
            }
            Ok(Event::Text(t)) => {
                let text = t.unescape().map_err(|e| e.to_string())?.into_owned();
                match path.last().map(String::as_str) {
                    Some("Name") if path.iter().any(|p| p == "Bucket") => name = text,
                    Some("Region") if path.iter().any(|p| p == "Bucket") => region = text,
                    Some("Location") if path.iter().any(|p| p == "Bucket") => location = text,
                    Some("IsTruncated") => page.truncated = text.trim() == "true",
                    Some("NextMarker") => page.next_marker = Some(text),
                    _ => {}
                }
            }
            Ok(Event::Eof) => break,
            Err(e) => return Err(format!("ListBuckets XML: {e}")),
            _ => {}
        }
        buf.clear();
    }
    if !saw_root {
        return Err("ListBuckets answer has no ListAllMyBucketsResult".into());
    }
    // A body cut short parses as far as it goes: only a closed document is complete.
    if !closed_root {
        return Err("ListBuckets answer ends before </ListAllMyBucketsResult> (truncated)".into());
    }
    Ok(page)
}

/// The `<Code>`, `<Message>` and `<RequestId>` of an object store's XML error.
pub fn parse_xml_error(xml: &[u8]) -> (Option<String>, String, Option<String>) {
    let text = String::from_utf8_lossy(xml);
    let grab = |tag: &str| {
        let open = format!("<{tag}>");
        let close = format!("</{tag}>");
        let s = text.find(&open)? + open.len();
        let e = text[s..].find(&close)? + s;
        Some(text[s..e].to_string())
    };
    (
        grab("Code"),
        grab("Message").unwrap_or_default(),
        grab("RequestId"),
    )
}

/// The classified error of an object store's non-2xx XML answer, `classify` mapping its
/// `<Code>` (empty when absent) and the HTTP status to an error class.
pub fn xml_answer_error(
    site: crate::cloud::http::CallSite<'_>,
    status: u16,
    body: &[u8],
    classify: impl Fn(&str, u16) -> crate::cloud::ErrorClass,
) -> crate::cloud::CloudError {
    let (code, message, request_id) = parse_xml_error(body);
    let class = classify(code.as_deref().unwrap_or(""), status);
    crate::cloud::CloudError {
        http_status: Some(status),
        code,
        request_id,
        ..site.error(class, message)
    }
}

/// The tags of a GetBucketTagging answer (`<Tagging><TagSet><Tag><Key>…`), S3, OBS alike.
pub fn parse_tagging(xml: &[u8]) -> Result<std::collections::BTreeMap<String, String>, String> {
    let root = crate::cloud::xml::Node::parse(xml)?;
    Ok(root
        .child("TagSet")
        .into_iter()
        .flat_map(|s| s.all("Tag"))
        .filter_map(|t| {
            Some((
                t.text_of("Key")?.to_string(),
                t.text_of("Value").unwrap_or("").to_string(),
            ))
        })
        .collect())
}

/// The buckets of `region` in an account-wide (name, region) listing, as resources (ID and name
/// = the bucket's name) still without tags.
pub fn in_region(all: &[(String, String)], region: &str) -> Vec<crate::cloud::Resource> {
    all.iter()
        .filter(|(_, r)| r == region)
        .map(|(name, r)| crate::cloud::Resource {
            id: name.clone(),
            name: name.clone(),
            region: r.clone(),
            tags: Default::default(),
            attributes: Default::default(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_buckets_xml_gives_names_regions_and_paging() {
        let xml = br#"<?xml version="1.0" encoding="UTF-8"?>
<ListAllMyBucketsResult>
  <Prefix></Prefix><Marker></Marker><MaxKeys>100</MaxKeys><IsTruncated>true</IsTruncated><NextMarker>b2</NextMarker>
  <Owner><ID>1234567890</ID><DisplayName>1234567890</DisplayName></Owner>
  <Buckets>
    <Bucket><CreationDate>2014-02-17T18:12:43.000Z</CreationDate><ExtranetEndpoint>oss-cn-shanghai.aliyuncs.com</ExtranetEndpoint>
      <IntranetEndpoint>oss-cn-shanghai-internal.aliyuncs.com</IntranetEndpoint><Location>oss-cn-shanghai</Location>
      <Name>app-base-oss</Name><Region>cn-shanghai</Region><StorageClass>Standard</StorageClass></Bucket>
    <Bucket><Location>oss-cn-beijing</Location><Name>b2</Name></Bucket>
  </Buckets>
</ListAllMyBucketsResult>"#;
        let page = parse_list_buckets(xml).unwrap();
        assert_eq!(
            page.buckets,
            vec![
                ("app-base-oss".to_string(), "cn-shanghai".to_string()),
                ("b2".to_string(), "cn-beijing".to_string())
            ]
        );
        assert!(page.truncated);
        assert_eq!(page.next_marker.as_deref(), Some("b2"));
        assert!(parse_list_buckets(b"<Error><Code>X</Code></Error>").is_err());
        assert!(parse_list_buckets(&xml[..xml.len() / 2]).is_err());
    }

    #[test]
    fn oss_error_fields_are_extracted() {
        let (code, msg, rid) = parse_xml_error(
            b"<Error><Code>SignatureDoesNotMatch</Code><Message>bad</Message><RequestId>R</RequestId></Error>",
        );
        assert_eq!(code.as_deref(), Some("SignatureDoesNotMatch"));
        assert_eq!(msg, "bad");
        assert_eq!(rid.as_deref(), Some("R"));
    }
}
