//! Reads of the Inbox model. Conversations come most recent first, keyset-paginated by
//! (last message time, id); a conversation's messages come newest first, paginated
//! backwards by their number.

use cartie_store::{on_pool, Database};
use chrono::{DateTime, Utc};
use sqlx::QueryBuilder;
use uuid::Uuid;

/// A conversation as the Inbox lists it, with its lead's status.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ConversationRow {
    pub conversation_id: Uuid,
    pub workspace_id: Uuid,
    pub bot_id: Uuid,
    pub chat_id: i64,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub username: Option<String>,
    pub phone: Option<String>,
    pub closed: bool,
    pub blocked: bool,
    pub assignee: Option<Uuid>,
    pub message_count: i64,
    pub read_up_to: i64,
    pub unread_count: i64,
    pub last_message_preview: Option<String>,
    pub last_message_at: DateTime<Utc>,
    pub changed_position: i64,
    pub created_at: DateTime<Utc>,
    pub lead_id: Option<Uuid>,
    pub lead_status: Option<String>,
}

const CONVERSATION_SELECT: &str = "SELECT c.conversation_id, c.workspace_id, c.bot_id, c.chat_id, \
    c.first_name, c.last_name, c.username, c.phone, c.closed, c.blocked, c.assignee, c.message_count, \
    c.read_up_to, c.unread_count, c.last_message_preview, c.last_message_at, c.changed_position, \
    c.created_at, l.lead_id, l.status AS lead_status \
    FROM inbox_conversations c LEFT JOIN leads l \
    ON l.conversation_id = c.conversation_id AND l.workspace_id = c.workspace_id";

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct MessageRow {
    pub conversation_id: Uuid,
    pub seq: i64,
    pub direction: String,
    pub kind: String,
    pub text: Option<String>,
    pub content: String,
    pub telegram_message_id: Option<i64>,
    pub delivery: String,
    pub failure_reason: Option<String>,
    pub reply_to: Option<i64>,
    pub author: String,
    pub sent_at: DateTime<Utc>,
    pub edited_at: Option<DateTime<Utc>>,
    pub position: i64,
}

const MESSAGE_COLUMNS: &str = "conversation_id, seq, direction, kind, text, content, \
    telegram_message_id, delivery, failure_reason, reply_to, author, sent_at, edited_at, position";

#[derive(Debug, Clone, Default)]
pub struct ConversationFilter {
    pub bot: Option<Uuid>,
    pub unread_only: bool,
    pub assignee: Option<Uuid>,
    /// `Some(false)`: open ones only; `Some(true)`: closed ones only.
    pub closed: Option<bool>,
    /// Matches contact name, username, phone, or the text of any message.
    pub search: Option<String>,
}

/// Where a page of conversations continues: after this (time, id).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConversationCursor {
    pub last_message_at: DateTime<Utc>,
    pub conversation_id: Uuid,
}

/// A LIKE pattern matching `search` (already lower-cased) anywhere.
fn like_pattern(search: &str) -> String {
    let escaped = search
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

/// A word more frequent than this among all messages (by PostgreSQL's statistics) is not
/// looked up in the word index: its posting list is long, and reading it costs more than
/// checking the candidates the rarer words leave.
const COMMON_WORD_FREQUENCY: f32 = 0.01;

/// The words that every message containing `search` (lower-cased) holds whole: those with
/// whitespace on both sides in the search — the first and the last may be the end or the
/// start of a longer word — made only of letters and digits, which PostgreSQL's text-search
/// parser keeps as a word of their own. Duplicates are dropped.
fn whole_words(search: &str) -> Vec<&str> {
    let words: Vec<&str> = search.split_whitespace().collect();
    let mut whole: Vec<&str> = Vec::new();
    if words.len() < 3 {
        return whole;
    }
    for word in &words[1..words.len() - 1] {
        let letters_and_digits = word
            .chars()
            .all(|c| c.is_alphabetic() || c.is_ascii_digit());
        if letters_and_digits && word.len() <= 100 && !whole.contains(word) {
            whole.push(word);
        }
    }
    whole
}

/// How a search finds the messages that contain it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum MessageSearch {
    /// By the trigram index (PostgreSQL) or a scan (SQLite), with a LIKE pattern.
    Pattern,
    /// By these rare whole words in the word index (PostgreSQL, migration 0009), each
    /// candidate checked for the whole search.
    RareWords(String),
}

/// The search's whole words that are not common among all messages, as PostgreSQL's
/// statistics of the word index tell (words it has never seen or counted are rare).
async fn message_search(pool: &sqlx::PgPool, search: &str) -> Result<MessageSearch, sqlx::Error> {
    let words = whole_words(search);
    if words.is_empty() {
        return Ok(MessageSearch::Pattern);
    }
    let common: Vec<String> = sqlx::query_scalar(
        "SELECT w.word FROM pg_stats s, \
         unnest(s.most_common_elems::text::text[], s.most_common_elem_freqs) AS w(word, frequency) \
         WHERE s.schemaname = current_schema() AND s.tablename = 'inbox_messages_words' \
         AND w.frequency > $1 AND w.word = ANY($2)",
    )
    .bind(COMMON_WORD_FREQUENCY)
    .bind(&words)
    .fetch_all(pool)
    .await?;
    Ok(rare_words(&words, &common))
}

fn rare_words(words: &[&str], common: &[String]) -> MessageSearch {
    let rare: Vec<&str> = words
        .iter()
        .copied()
        .filter(|w| !common.iter().any(|c| c == w))
        .collect();
    if rare.is_empty() {
        MessageSearch::Pattern
    } else {
        MessageSearch::RareWords(rare.join(" "))
    }
}

/// Up to `limit` conversations after the cursor, most recent first, and whether more follow.
pub async fn conversations(
    db: &Database,
    workspace: Uuid,
    filter: &ConversationFilter,
    after: Option<ConversationCursor>,
    limit: i64,
) -> Result<(Vec<ConversationRow>, bool), sqlx::Error> {
    let search = filter
        .search
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_lowercase);
    let message_search = match (db, search.as_deref()) {
        (Database::Postgres(pool), Some(search)) => message_search(pool, search).await?,
        _ => MessageSearch::Pattern,
    };
    let mut rows: Vec<ConversationRow> = on_pool!(db, pool, DB => {
        let mut q = QueryBuilder::<DB>::new(format!("{CONVERSATION_SELECT} WHERE c.workspace_id = "));
        q.push_bind(workspace);
        if let Some(bot) = filter.bot {
            q.push(" AND c.bot_id = ").push_bind(bot);
        }
        if filter.unread_only {
            q.push(" AND c.unread_count > 0");
        }
        if let Some(assignee) = filter.assignee {
            q.push(" AND c.assignee = ").push_bind(assignee);
        }
        if let Some(closed) = filter.closed {
            q.push(" AND c.closed = ").push_bind(closed);
        }
        if let Some(search) = search.as_deref() {
            // Matching conversations from each side on its own (each can use its index on
            // PostgreSQL), rather than a test per conversation.
            let pattern = like_pattern(search);
            q.push(" AND c.conversation_id IN (SELECT s.conversation_id FROM inbox_conversations s WHERE s.workspace_id = ")
                .push_bind(workspace)
                .push(" AND s.search_text LIKE ")
                .push_bind(pattern.clone())
                .push(" ESCAPE '\\' UNION SELECT m.conversation_id FROM inbox_messages m WHERE m.workspace_id = ")
                .push_bind(workspace);
            match &message_search {
                MessageSearch::Pattern => {
                    q.push(" AND m.text_key LIKE ").push_bind(pattern).push(" ESCAPE '\\')");
                }
                MessageSearch::RareWords(words) => {
                    // strpos, not LIKE: the trigram index must not be combined with the
                    // word index, it would read the posting lists this avoids.
                    q.push(" AND to_tsvector('simple'::regconfig, m.text_key) @@ plainto_tsquery('simple'::regconfig, ")
                        .push_bind(words.clone())
                        .push(") AND strpos(m.text_key, ")
                        .push_bind(search.to_string())
                        .push(") > 0)");
                }
            }
        }
        if let Some(cursor) = after {
            q.push(" AND (c.last_message_at < ").push_bind(cursor.last_message_at);
            q.push(" OR (c.last_message_at = ").push_bind(cursor.last_message_at);
            q.push(" AND c.conversation_id < ").push_bind(cursor.conversation_id).push("))");
        }
        q.push(" ORDER BY c.last_message_at DESC, c.conversation_id DESC LIMIT ").push_bind(limit + 1);
        q.build_query_as().fetch_all(pool).await?
    });
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    Ok((rows, more))
}

pub async fn conversation(
    db: &Database,
    workspace: Uuid,
    id: Uuid,
) -> Result<Option<ConversationRow>, sqlx::Error> {
    // By the primary key alone, the workspace checked on the row (ADR 0019).
    let sql = format!("{CONVERSATION_SELECT} WHERE c.conversation_id = $1");
    let row: Option<ConversationRow> =
        on_pool!(db, pool => sqlx::query_as(&sql).bind(id).fetch_optional(pool).await)?;
    Ok(row.filter(|r| r.workspace_id == workspace))
}

/// Conversations of the workspace changed after `position`, oldest change first.
pub async fn changed_after(
    db: &Database,
    workspace: Uuid,
    position: i64,
    limit: i64,
) -> Result<Vec<ConversationRow>, sqlx::Error> {
    let sql = format!(
        "{CONVERSATION_SELECT} WHERE c.workspace_id = $1 AND c.changed_position > $2 \
         ORDER BY c.changed_position LIMIT $3"
    );
    on_pool!(db, pool => sqlx::query_as(&sql).bind(workspace).bind(position).bind(limit).fetch_all(pool).await)
}

/// Up to `limit` messages before message number `before` (the newest when `None`), newest
/// first, and whether older ones remain.
pub async fn messages(
    db: &Database,
    workspace: Uuid,
    conversation: Uuid,
    before: Option<i64>,
    limit: i64,
) -> Result<(Vec<MessageRow>, bool), sqlx::Error> {
    let sql = format!(
        "SELECT {MESSAGE_COLUMNS} FROM inbox_messages WHERE workspace_id = $1 AND conversation_id = $2 \
         AND seq < $3 ORDER BY seq DESC LIMIT $4"
    );
    let mut rows: Vec<MessageRow> = on_pool!(db, pool => sqlx::query_as(&sql)
        .bind(workspace)
        .bind(conversation)
        .bind(before.unwrap_or(i64::MAX))
        .bind(limit + 1)
        .fetch_all(pool)
        .await)?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    Ok((rows, more))
}

/// Messages of a conversation after log position `position`, oldest first (for subscribers).
pub async fn messages_after(
    db: &Database,
    workspace: Uuid,
    conversation: Uuid,
    position: i64,
    limit: i64,
) -> Result<Vec<MessageRow>, sqlx::Error> {
    let sql = format!(
        "SELECT {MESSAGE_COLUMNS} FROM inbox_messages WHERE workspace_id = $1 AND conversation_id = $2 \
         AND position > $3 ORDER BY position LIMIT $4"
    );
    on_pool!(db, pool => sqlx::query_as(&sql)
        .bind(workspace)
        .bind(conversation)
        .bind(position)
        .bind(limit)
        .fetch_all(pool)
        .await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_words_inside_the_search_must_be_whole_in_a_message() {
        // "car" may end "oscar" and "9" may start "90": only the words between are whole.
        assert_eq!(whole_words("car 512 in chat 9"), ["512", "in", "chat"]);
        assert!(whole_words("camry").is_empty());
        assert!(whole_words("white camry").is_empty());
        assert_eq!(whole_words("white  camry\t2019 hybrid"), ["camry", "2019"]);
    }

    #[test]
    fn words_the_parser_would_split_or_join_are_not_looked_up() {
        assert_eq!(
            whole_words("a trade-in 4runner foo_bar x² b@c.ua 512.5 продам z"),
            ["4runner", "продам"]
        );
        assert_eq!(whole_words("a rav4 rav4 b"), ["rav4"]);
    }

    #[test]
    fn common_words_are_left_to_the_check_of_each_candidate() {
        let words = ["512", "in", "chat"];
        assert_eq!(
            rare_words(&words, &["in".into(), "chat".into()]),
            MessageSearch::RareWords("512".into())
        );
        assert_eq!(
            rare_words(&words, &[]),
            MessageSearch::RareWords("512 in chat".into())
        );
        let all: Vec<String> = words.iter().map(|w| w.to_string()).collect();
        assert_eq!(rare_words(&words, &all), MessageSearch::Pattern);
    }
}
