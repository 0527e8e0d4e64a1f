//! A small XML element tree: parsed from responses, rendered by the embedded server.
//!
//! Checks need the whole shape of a response (which elements exist, in which
//! namespace), not a typed view that silently drops what it does not know, so
//! responses are parsed into this tree. Parsing is bounded (depth, element
//! count) and rejects DOCTYPE declarations, so an entity bomb or a deeply nested
//! body is an error, not a hang.

use quick_xml::errors::IllFormedError;
use quick_xml::events::Event;
use quick_xml::reader::Reader;
use serde::Serialize;

const MAX_DEPTH: usize = 32;
const MAX_ELEMENTS: usize = 100_000;

/// One element: its local name, its `xmlns` (if declared on it), its children and its text.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Element {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<Element>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub text: String,
}

impl Element {
    pub fn new(name: &str) -> Element {
        Element {
            name: name.to_string(),
            ..Element::default()
        }
    }

    /// A leaf element with text.
    pub fn leaf(name: &str, text: impl Into<String>) -> Element {
        Element {
            name: name.to_string(),
            text: text.into(),
            ..Element::default()
        }
    }

    pub fn with_namespace(mut self, ns: &str) -> Element {
        self.namespace = Some(ns.to_string());
        self
    }

    pub fn child(mut self, child: Element) -> Element {
        self.children.push(child);
        self
    }

    /// The first child with this name.
    pub fn get(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// The element at a `/`-separated path of child names below this one.
    pub fn at(&self, path: &str) -> Option<&Element> {
        path.split('/').try_fold(self, |el, name| el.get(name))
    }

    /// The text at a path, if the element exists.
    pub fn text_at(&self, path: &str) -> Option<&str> {
        self.at(path).map(|e| e.text.as_str())
    }

    /// Renders the tree the way IAM lays out its bodies: no declaration,
    /// two-space indentation, a final newline.
    pub fn render(&self) -> String {
        let mut out = String::new();
        self.render_into(&mut out, 0);
        out
    }

    fn render_into(&self, out: &mut String, depth: usize) {
        let indent = "  ".repeat(depth);
        out.push_str(&indent);
        out.push('<');
        out.push_str(&self.name);
        if let Some(ns) = &self.namespace {
            out.push_str(" xmlns=\"");
            out.push_str(&quick_xml::escape::escape(ns));
            out.push('"');
        }
        out.push('>');
        if self.children.is_empty() {
            out.push_str(&quick_xml::escape::partial_escape(&self.text));
        } else {
            out.push('\n');
            for child in &self.children {
                child.render_into(out, depth + 1);
            }
            out.push_str(&indent);
        }
        out.push_str("</");
        out.push_str(&self.name);
        out.push_str(">\n");
    }
}

/// Why a body is not a well-formed XML document.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct XmlError(String, Malformation);

/// How a document is broken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Malformation {
    /// Whole, but its tags do not match: what a server that leaves text
    /// unescaped sends (`<UserName>a<b</UserName>`).
    MismatchedTags,
    /// Cut short, hostile (DOCTYPE, unknown entities, too deep) or not XML.
    Other,
}

impl XmlError {
    fn other(message: impl Into<String>) -> XmlError {
        XmlError(message.into(), Malformation::Other)
    }

    pub fn malformation(&self) -> Malformation {
        self.1
    }
}

/// Parses a whole document into its root element.
pub fn parse(body: &str) -> Result<Element, XmlError> {
    let mut reader = Reader::from_str(body);
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut count = 0usize;
    loop {
        let event = reader.read_event().map_err(|e| {
            let kind = match e {
                quick_xml::Error::IllFormed(
                    IllFormedError::MismatchedEndTag { .. } | IllFormedError::UnmatchedEndTag(_),
                ) => Malformation::MismatchedTags,
                _ => Malformation::Other,
            };
            XmlError(
                format!("malformed XML at byte {}: {e}", reader.error_position()),
                kind,
            )
        })?;
        match event {
            Event::Start(_) | Event::Empty(_) if root.is_some() => {
                return Err(XmlError::other("content after the root element"));
            }
            Event::Start(ref start) | Event::Empty(ref start) => {
                count += 1;
                if count > MAX_ELEMENTS {
                    return Err(XmlError::other(format!(
                        "more than {MAX_ELEMENTS} elements"
                    )));
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(XmlError::other(format!(
                        "nested deeper than {MAX_DEPTH} elements"
                    )));
                }
                let name = start.local_name().as_ref().to_string();
                let mut element = Element::new(&name);
                for attr in start.attributes() {
                    let attr =
                        attr.map_err(|e| XmlError::other(format!("malformed attribute: {e}")))?;
                    if attr.key.as_ref() == "xmlns" {
                        let value = attr
                            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                            .map_err(|e| {
                                XmlError::other(format!("malformed attribute value: {e}"))
                            })?;
                        element.namespace = Some(value.into_owned());
                    }
                }
                if matches!(event, Event::Empty(_)) {
                    close(&mut stack, &mut root, element);
                } else {
                    stack.push(element);
                }
            }
            Event::End(_) => {
                let element = stack
                    .pop()
                    .ok_or_else(|| XmlError::other("closing tag without an opening tag"))?;
                close(&mut stack, &mut root, element);
            }
            Event::Text(text) => {
                append_text(&mut stack, &text.xml10_content())?;
            }
            Event::GeneralRef(reference) => {
                let name = reference.xml10_content();
                let resolved = resolve_reference(&name)
                    .ok_or_else(|| XmlError::other(format!("unknown entity &{name};")))?;
                append_text(&mut stack, &resolved)?;
            }
            Event::CData(data) => {
                let text = data.xml10_content().into_owned();
                append_text(&mut stack, &text)?;
            }
            Event::DocType(_) => {
                return Err(XmlError::other("DOCTYPE declarations are not accepted"));
            }
            Event::Eof => break,
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
        }
    }
    if !stack.is_empty() {
        return Err(XmlError::other(format!(
            "document ends inside <{}> (truncated)",
            stack.last().map(|e| e.name.as_str()).unwrap_or_default()
        )));
    }
    root.ok_or_else(|| XmlError::other("no root element"))
}

fn close(stack: &mut [Element], root: &mut Option<Element>, mut element: Element) {
    if !element.children.is_empty() && element.text.trim().is_empty() {
        element.text.clear();
    }
    match stack.last_mut() {
        Some(parent) => parent.children.push(element),
        None => *root = Some(element),
    }
}

fn append_text(stack: &mut [Element], text: &str) -> Result<(), XmlError> {
    match stack.last_mut() {
        Some(top) => {
            top.text.push_str(text);
            Ok(())
        }
        None if text.trim().is_empty() => Ok(()),
        None => Err(XmlError::other("text outside the root element")),
    }
}

fn resolve_reference(name: &str) -> Option<String> {
    let ch = match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        _ => {
            let code = if let Some(hex) = name.strip_prefix("#x") {
                u32::from_str_radix(hex, 16).ok()?
            } else {
                name.strip_prefix('#')?.parse().ok()?
            };
            char::from_u32(code)?
        }
    };
    Some(ch.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_a_rendered_tree() {
        let tree = Element::new("ErrorResponse")
            .with_namespace("https://iam.amazonaws.com/doc/2010-05-08/")
            .child(
                Element::new("Error")
                    .child(Element::leaf("Code", "NoSuchEntity"))
                    .child(Element::leaf("Message", "a < b & \"c\"")),
            )
            .child(Element::leaf("RequestId", "x"));
        let text = tree.render();
        assert!(text.starts_with("<ErrorResponse xmlns="));
        assert!(text.ends_with("</ErrorResponse>\n"));
        assert_eq!(parse(&text).unwrap(), tree);
        assert_eq!(tree.text_at("Error/Code"), Some("NoSuchEntity"));
    }

    #[test]
    fn truncated_and_hostile_documents_are_errors() {
        assert!(parse("<A><B>text</B>").unwrap_err().0.contains("truncated"));
        assert_eq!(
            parse("<A><B>a<b</B></A>").unwrap_err().malformation(),
            Malformation::MismatchedTags
        );
        assert_eq!(
            parse("<A><B>text</B>").unwrap_err().malformation(),
            Malformation::Other
        );
        assert!(parse("").is_err());
        assert!(parse("<html><body>bad gateway</html>").is_err());
        let bomb = r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]><a>&lol2;</a>"#;
        assert!(parse(bomb).unwrap_err().0.contains("DOCTYPE"));
        assert!(parse("<a>&foo;</a>").is_err());
        let deep = "<a>".repeat(100) + &"</a>".repeat(100);
        assert!(parse(&deep).unwrap_err().0.contains("deeper"));
    }

    #[test]
    fn character_references_and_empty_elements() {
        let el = parse("<a><b>x&#233;&#x41;&amp;</b><c/></a>").unwrap();
        assert_eq!(el.text_at("b"), Some("xéA&"));
        assert_eq!(el.text_at("c"), Some(""));
    }
}
