//! What a query's text and variables may hold, checked before the query is parsed.
//!
//! - **Nesting.** async-graphql's parser limits nested selection sets but not nested values:
//!   a list or object literal a few thousand levels deep (`[[[…]]]`, a few KiB of text, in
//!   any argument, default value or directive) recurses through the parser until the
//!   thread's stack overflows, and that aborts the whole process. The brackets of the text
//!   are counted, outside strings and comments.
//! - **NUL characters**, in a string literal (`\u0000`) or a variable. No text Cartie keeps
//!   or looks up can hold one (PostgreSQL refuses it in `text`), so a NUL anywhere would only
//!   reach the database and fail there.
//!
//! Either is refused with `VALIDATION` before the parser sees the query, for every query the
//! schema runs, over HTTP and over the WebSocket.

use std::sync::Arc;

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery};
use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{ErrorExtensionValues, Pos, ServerError, ServerResult, Value, Variables};

use crate::error::codes;

/// Deepest nesting of `{`, `[` and `(` accepted in a query's text. Selections are limited
/// to [`super::MAX_DEPTH`] levels later on; this leaves room for input objects and lists
/// inside them, and stops far below what overflows a stack.
pub const MAX_NESTING: usize = 64;

pub struct QueryTextChecks;

impl ExtensionFactory for QueryTextChecks {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(QueryTextChecksExtension)
    }
}

struct QueryTextChecksExtension;

#[async_trait::async_trait]
impl Extension for QueryTextChecksExtension {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        if let Some(pos) = too_deep(query, MAX_NESTING) {
            return Err(refusal(
                format!("the query is nested more than {MAX_NESTING} levels deep"),
                Some(pos),
            ));
        }
        if query.contains("\\u0000") || variables.values().any(holds_nul) {
            return Err(refusal(
                "text must not contain NUL characters (U+0000)".to_string(),
                None,
            ));
        }
        next.run(ctx, query, variables).await
    }
}

fn refusal(message: String, pos: Option<Pos>) -> ServerError {
    let mut extensions = ErrorExtensionValues::default();
    extensions.set("code", codes::VALIDATION);
    let mut error = ServerError::new(message, pos);
    error.extensions = Some(extensions);
    error
}

/// Whether a variable's value holds a NUL anywhere (keys of input objects included).
fn holds_nul(value: &Value) -> bool {
    match value {
        Value::String(text) => text.contains('\0'),
        Value::List(items) => items.iter().any(holds_nul),
        Value::Object(fields) => fields
            .iter()
            .any(|(name, value)| name.contains('\0') || holds_nul(value)),
        _ => false,
    }
}

/// Where `query` first opens a bracket deeper than `max` levels, counting `{`, `[` and `(`
/// outside strings, block strings and comments; `None` when it never does.
fn too_deep(query: &str, max: usize) -> Option<Pos> {
    let bytes = query.as_bytes();
    let (mut depth, mut line, mut line_start) = (0usize, 1usize, 0usize);
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\n' => {
                line += 1;
                line_start = i + 1;
            }
            b'#' => {
                // A comment runs to the end of the line.
                while i + 1 < bytes.len() && !matches!(bytes[i + 1], b'\n' | b'\r') {
                    i += 1;
                }
            }
            b'"' if bytes[i..].starts_with(b"\"\"\"") => {
                // A block string ends at the next `"""` not escaped as `\"""`.
                i += 3;
                while i < bytes.len() && !bytes[i..].starts_with(b"\"\"\"") {
                    if bytes[i..].starts_with(b"\\\"\"\"") {
                        i += 4;
                        continue;
                    }
                    if bytes[i] == b'\n' {
                        line += 1;
                        line_start = i + 1;
                    }
                    i += 1;
                }
                i += 2; // the closing quotes, less the one the loop steps over
            }
            b'"' => {
                // A string ends at the next unescaped `"` (or, malformed, at the line's end).
                i += 1;
                while i < bytes.len() && !matches!(bytes[i], b'"' | b'\n') {
                    // An escape takes the next character, but never the line's end.
                    let escaped = bytes[i] == b'\\' && bytes.get(i + 1) != Some(&b'\n');
                    i += if escaped { 2 } else { 1 };
                }
                if bytes.get(i) == Some(&b'\n') {
                    continue;
                }
            }
            b'{' | b'[' | b'(' => {
                depth += 1;
                if depth > max {
                    // Columns count characters, as the parser's positions do.
                    let column = query[line_start..i].chars().count() + 1;
                    return Some(Pos { line, column });
                }
            }
            b'}' | b']' | b')' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(levels: usize) -> String {
        format!(
            "{{ listing(id: {}1{}) {{ id }} }}",
            "[".repeat(levels),
            "]".repeat(levels)
        )
    }

    #[test]
    fn counts_every_kind_of_bracket_up_to_the_limit() {
        // The operation's braces and the argument list take two levels: 62 lists make 64.
        assert_eq!(too_deep(&nested(62), 64), None);
        assert_eq!(
            too_deep(&nested(63), 64),
            Some(Pos {
                line: 1,
                column: 77
            })
        );
        let objects = format!("{{ a(b: {}1{}) }}", "{c: ".repeat(70), "}".repeat(70));
        assert_eq!(
            too_deep(&objects, 64),
            Some(Pos {
                line: 1,
                column: 256
            })
        );
    }

    #[test]
    fn brackets_in_strings_block_strings_and_comments_do_not_count() {
        let deep = "[".repeat(100);
        let query = format!(
            "# {deep}\n{{ a(s: \"{deep} \\\" {deep}\", b: \"\"\"\n{deep}\\\"\"\"{deep}\n\"\"\") }}"
        );
        assert_eq!(too_deep(&query, 3), None, "{query}");
        // After them, brackets count again, and lines are where they are.
        let after = format!("{query}\n  {{ [[[ ]]] }}");
        assert_eq!(too_deep(&after, 3), Some(Pos { line: 5, column: 7 }));
    }

    #[test]
    fn a_nul_anywhere_in_a_variable_is_found() {
        let value = |json: serde_json::Value| Value::from_json(json).unwrap();
        assert!(!holds_nul(&value(
            serde_json::json!({ "a": ["b", 1, null, { "c": "d" }] })
        )));
        assert!(holds_nul(&value(serde_json::json!("x\u{0}"))));
        assert!(holds_nul(&value(serde_json::json!([1, ["\u{0}"]]))));
        assert!(holds_nul(&value(
            serde_json::json!({ "a": { "b\u{0}": 1 } })
        )));
    }

    #[test]
    fn unbalanced_or_unterminated_text_is_left_to_the_parser() {
        assert_eq!(too_deep("}}}} { a }", 1), None);
        assert_eq!(too_deep("{ a(s: \"[[[[", 2), None);
        // A string cannot run on past its line, even after a backslash.
        assert_eq!(
            too_deep("{ a(s: \"x\\\n[[[ ]]]) }", 2),
            Some(Pos { line: 2, column: 1 })
        );
        assert_eq!(too_deep("{ a(s: \"\"\"[[[[", 2), None);
        assert_eq!(too_deep("", 0), None);
    }
}
