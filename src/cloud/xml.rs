//! A small element tree for the XML the Query and REST APIs answer (AWS ELB, EC2, STS, S3; OBS):
//! enough to walk `…Result/LoadBalancers/member/…` without a schema. Namespaces are dropped;
//! a document cut short is an error, never a shorter list.

use quick_xml::events::Event;

/// One element: its local name, its text and its children in order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Node {
    /// Local name (no namespace prefix).
    pub name: String,
    /// Text content, unescaped and trimmed.
    pub text: String,
    /// Child elements.
    pub children: Vec<Node>,
}

impl Node {
    /// Parse a document into its root element.
    pub fn parse(xml: &[u8]) -> Result<Node, String> {
        let mut reader = quick_xml::Reader::from_reader(xml);
        let mut stack: Vec<Node> = Vec::new();
        let mut buf = Vec::new();
        loop {
            match reader.read_event_into(&mut buf) {
                Ok(Event::Start(e)) => stack.push(Node {
                    name: String::from_utf8_lossy(e.local_name().as_ref()).into_owned(),
                    ..Node::default()
                }),
                Ok(Event::Empty(e)) => {
                    let node = Node {
                        name: String::from_utf8_lossy(e.local_name().as_ref()).into_owned(),
                        ..Node::default()
                    };
                    match stack.last_mut() {
                        Some(parent) => parent.children.push(node),
                        None => return Ok(node),
                    }
                }
                Ok(Event::Text(t)) => {
                    let text = t.unescape().map_err(|e| format!("XML text: {e}"))?;
                    if let Some(top) = stack.last_mut() {
                        top.text.push_str(text.trim());
                    }
                }
                Ok(Event::CData(t)) => {
                    if let Some(top) = stack.last_mut() {
                        top.text.push_str(&String::from_utf8_lossy(&t));
                    }
                }
                Ok(Event::End(_)) => {
                    let Some(done) = stack.pop() else {
                        return Err("XML closes an element it never opened".into());
                    };
                    match stack.last_mut() {
                        Some(parent) => parent.children.push(done),
                        None => return Ok(done),
                    }
                }
                Ok(Event::Eof) => {
                    return Err(if stack.is_empty() {
                        "XML answer is empty".into()
                    } else {
                        "XML answer ends before its root element closes (truncated)".into()
                    })
                }
                Err(e) => return Err(format!("XML: {e}")),
                _ => {}
            }
            buf.clear();
        }
    }

    /// The first child named `name`.
    pub fn child(&self, name: &str) -> Option<&Node> {
        self.children.iter().find(|c| c.name == name)
    }

    /// The element at a path of child names.
    pub fn path(&self, names: &[&str]) -> Option<&Node> {
        names.iter().try_fold(self, |n, name| n.child(name))
    }

    /// The text of the first child named `name`.
    pub fn text_of(&self, name: &str) -> Option<&str> {
        self.child(name).map(|c| c.text.as_str())
    }

    /// The children named `name` (`member` in Query APIs, `item` in EC2, `Bucket` in S3).
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Node> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// The first element named `name` anywhere below (depth first).
    pub fn find(&self, name: &str) -> Option<&Node> {
        self.children.iter().find_map(|c| {
            if c.name == name {
                Some(c)
            } else {
                c.find(name)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_answers_are_walked_by_path() {
        // moto 5.2.5 DescribeTags (cloud-apis C.5).
        let xml = br#"<DescribeTagsResponse xmlns="http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/"><DescribeTagsResult><TagDescriptions><member><ResourceArn>arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/my-alb/f0e54ee5cbc89a39</ResourceArn><Tags><member><Key>env</Key><Value>prod</Value></member></Tags></member></TagDescriptions></DescribeTagsResult><ResponseMetadata><RequestId>6VaF</RequestId></ResponseMetadata></DescribeTagsResponse>"#;
        let root = Node::parse(xml).unwrap();
        assert_eq!(root.name, "DescribeTagsResponse");
        let list = root
            .path(&["DescribeTagsResult", "TagDescriptions"])
            .unwrap();
        let first = list.all("member").next().unwrap();
        assert!(first
            .text_of("ResourceArn")
            .unwrap()
            .ends_with("f0e54ee5cbc89a39"));
        let tag = first.path(&["Tags", "member"]).unwrap();
        assert_eq!(
            (tag.text_of("Key"), tag.text_of("Value")),
            (Some("env"), Some("prod"))
        );
        assert_eq!(
            root.find("RequestId").map(|n| n.text.as_str()),
            Some("6VaF")
        );
        assert!(Node::parse(&xml[..xml.len() / 2]).is_err());
        assert_eq!(
            Node::parse(b"<SecurityGroups/>").unwrap().name,
            "SecurityGroups"
        );
    }
}
