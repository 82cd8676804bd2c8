//! Where each value sits in the inventory file, so that errors found after parsing (an unknown
//! field, a duplicate host, an unset variable) can still name `file:line:column`.

use std::collections::HashMap;
use std::fmt;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// A position in the file, both 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

/// One step of a path into the document: a mapping key or a sequence index.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Seg {
    Key(String),
    Index(usize),
}

/// A path like `hosts[1].address`, the name users see for a field.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct YamlPath(pub Vec<Seg>);

impl YamlPath {
    pub fn key(&self, k: &str) -> YamlPath {
        let mut p = self.clone();
        p.0.push(Seg::Key(k.to_string()));
        p
    }
    pub fn index(&self, i: usize) -> YamlPath {
        let mut p = self.clone();
        p.0.push(Seg::Index(i));
        p
    }
}

impl fmt::Display for YamlPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Key(k) if i == 0 => write!(f, "{k}")?,
                Seg::Key(k) => write!(f, ".{k}")?,
                Seg::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// Deepest nesting an inventory may have (real ones need about 6). Indexing costs time in
/// proportion to the depth for every value, so a deeper document is refused before it.
pub const MAX_DEPTH: usize = 64;

/// Where the document first nests deeper than `MAX_DEPTH`, if it does. Reads events only up
/// to there. The scanner looks ahead through flow collections and gives up at 256 levels,
/// which counts as too deep. Another syntax error ends the scan; the brackets are then
/// counted lexically (`too_deep_flow`), and the deserializer reports the error itself.
pub fn too_deep(text: &str) -> Option<Pos> {
    let mut parser = Parser::new_from_str(text);
    let mut depth = 0;
    loop {
        match parser.next_token() {
            Ok((Event::MappingStart(..) | Event::SequenceStart(..), mark)) => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Some(pos(mark));
                }
            }
            Ok((Event::MappingEnd | Event::SequenceEnd, _)) => depth -= 1,
            Err(e) if e.info() == "recursion limit exceeded" => return Some(pos(*e.marker())),
            Ok((Event::StreamEnd, _)) => return None,
            // yaml-rust2 stops at errors libyaml (the deserializer) reads on through, and
            // libyaml's cost grows with the square of the flow depth: count the brackets.
            Err(_) => return too_deep_flow(text),
            Ok(_) => {}
        }
    }
}

/// Where flow brackets (`[`, `{`) first nest deeper than `MAX_DEPTH`, counted lexically:
/// quoted scalars and comments are skipped. Only for text the YAML parser already refused, so
/// an unbalanced bracket inside a plain scalar can at worst make a broken file "too deep".
fn too_deep_flow(text: &str) -> Option<Pos> {
    let (mut depth, mut line, mut column) = (0usize, 1usize, 0usize);
    let mut quote: Option<char> = None;
    let (mut comment, mut escaped, mut prev) = (false, false, '\n');
    for c in text.chars() {
        column += 1;
        if c == '\n' {
            (line, column, comment) = (line + 1, 0, false);
        }
        match quote {
            _ if comment => {}
            Some('"') if escaped => escaped = false,
            Some('"') if c == '\\' => escaped = true,
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None => {
                let boundary = prev.is_whitespace() || matches!(prev, '[' | '{' | ',');
                match c {
                    '#' if boundary => comment = true,
                    '\'' | '"' if boundary => quote = Some(c),
                    '[' | '{' => {
                        depth += 1;
                        if depth > MAX_DEPTH {
                            return Some(Pos { line, column });
                        }
                    }
                    ']' | '}' => depth = depth.saturating_sub(1),
                    _ => {}
                }
            }
        }
        prev = c;
    }
    None
}

fn pos(mark: Marker) -> Pos {
    Pos {
        line: mark.line(),
        column: mark.col() + 1,
    }
}

/// Positions of every key and value in the document, by path.
#[derive(Debug, Default)]
pub struct Locations {
    keys: HashMap<YamlPath, Pos>,
    values: HashMap<YamlPath, Pos>,
}

impl Locations {
    /// Index a document. A syntax error is reported by the YAML deserializer instead, so
    /// whatever was indexed before it is kept.
    pub fn index(text: &str) -> Locations {
        let mut builder = Builder::default();
        let _ = Parser::new_from_str(text).load(&mut builder, false);
        builder.locations
    }

    /// Where the value at `path` starts (for a mapping or list under a key: the key); for a
    /// missing value, the nearest enclosing one.
    pub fn value(&self, path: &YamlPath) -> Option<Pos> {
        let mut p = path.clone();
        loop {
            if let Some(pos) = self.values.get(&p).or_else(|| self.keys.get(&p)) {
                return Some(*pos);
            }
            p.0.pop()?;
        }
    }

    /// Where the key naming `path` starts (falls back to the value's position).
    pub fn key(&self, path: &YamlPath) -> Option<Pos> {
        self.keys.get(path).copied().or_else(|| self.value(path))
    }
}

enum Frame {
    Map { key: Option<String> },
    Seq { next: usize },
}

#[derive(Default)]
struct Builder {
    locations: Locations,
    stack: Vec<Frame>,
    path: YamlPath,
}

impl Builder {
    /// Called for each value (scalar or container start): records it under the current path.
    /// A block container's start marker lands oddly, so a container under a key is found
    /// through its key instead (`container` = true).
    fn enter_value(&mut self, pos: Pos, container: bool) -> bool {
        match self.stack.last_mut() {
            Some(Frame::Map { key: None }) => return false,
            Some(Frame::Map { key: Some(k) }) => self.path.0.push(Seg::Key(k.clone())),
            Some(Frame::Seq { next }) => {
                self.path.0.push(Seg::Index(*next));
                *next += 1;
            }
            None => {}
        }
        let keyed = matches!(self.path.0.last(), Some(Seg::Key(_)));
        if !(container && keyed) {
            self.locations.values.insert(self.path.clone(), pos);
        }
        true
    }

    /// After a value ends: back to the parent path, and a mapping expects its next key.
    fn leave_value(&mut self) {
        if let Some(frame) = self.stack.last_mut() {
            self.path.0.pop();
            if let Frame::Map { key } = frame {
                *key = None;
            }
        }
    }
}

impl Builder {
    /// A scalar is a mapping key when the mapping waits for one, otherwise a value.
    fn scalar(&mut self, text: Option<String>, pos: Pos) {
        if self.enter_value(pos, false) {
            self.leave_value();
        } else if let Some(Frame::Map { key }) = self.stack.last_mut() {
            let text = text.unwrap_or_default();
            self.locations.keys.insert(self.path.key(&text), pos);
            *key = Some(text);
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        let pos = pos(mark);
        match ev {
            Event::Scalar(text, ..) => self.scalar(Some(text), pos),
            Event::Alias(_) => self.scalar(None, pos),
            Event::MappingStart(..) => {
                self.enter_value(pos, true);
                self.stack.push(Frame::Map { key: None });
            }
            Event::SequenceStart(..) => {
                self.enter_value(pos, true);
                self.stack.push(Frame::Seq { next: 0 });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
                self.leave_value();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(s: &[Seg]) -> YamlPath {
        YamlPath(s.to_vec())
    }

    #[test]
    fn finds_keys_and_values_in_nested_documents() {
        let text = "version: 1\nhosts:\n  - name: a\n    address: 10.0.0.1\n  - name: b\n    roles: [agent, lb]\n";
        let loc = Locations::index(text);
        let addr = path(&[
            Seg::Key("hosts".into()),
            Seg::Index(0),
            Seg::Key("address".into()),
        ]);
        assert_eq!(
            loc.value(&addr),
            Some(Pos {
                line: 4,
                column: 14
            })
        );
        assert_eq!(loc.key(&addr), Some(Pos { line: 4, column: 5 }));
        let role = path(&[
            Seg::Key("hosts".into()),
            Seg::Index(1),
            Seg::Key("roles".into()),
            Seg::Index(1),
        ]);
        assert_eq!(
            loc.value(&role),
            Some(Pos {
                line: 6,
                column: 20
            })
        );
        assert_eq!(addr.to_string(), "hosts[0].address");
    }

    #[test]
    fn depth_is_bounded() {
        let nested = |n: usize| format!("a: {}1{}\n", "[".repeat(n), "]".repeat(n));
        assert_eq!(too_deep(&nested(MAX_DEPTH - 1)), None);
        let block = format!("{}1\n", "- ".repeat(MAX_DEPTH + 1));
        assert_eq!(
            too_deep(&block),
            Some(Pos {
                line: 1,
                column: 1 + 2 * MAX_DEPTH
            })
        );
        assert!(too_deep(&nested(100_000)).is_some());
        // Unclosed: still found, before the syntax error at the end.
        assert!(too_deep(&"[".repeat(100_000)).is_some());
    }

    #[test]
    fn brackets_the_parser_refuses_are_counted() {
        // Flow content at column 0 under a key: yaml-rust2 stops at once, libyaml reads on.
        let lines = |n: usize| format!("a: x\nb:\n{}", "[\n".repeat(n));
        assert_eq!(too_deep(&lines(MAX_DEPTH)), None);
        assert_eq!(
            too_deep(&lines(MAX_DEPTH + 1)),
            Some(Pos {
                line: 3 + MAX_DEPTH,
                column: 1
            })
        );
        // Brackets in comments and quoted scalars do not count.
        let hidden = format!("b:\n[\n# {0}\n' {0}'\n\"\\\" {0}\"\n", "[".repeat(100));
        assert_eq!(too_deep(&hidden), None);
    }

    #[test]
    fn missing_value_falls_back_to_parent() {
        let loc = Locations::index("registry:\n  port: 5000\n");
        let p = path(&[Seg::Key("registry".into()), Seg::Key("hostname".into())]);
        assert_eq!(loc.value(&p), Some(Pos { line: 1, column: 1 }));
    }
}
