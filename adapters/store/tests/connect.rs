//! Opening a database: what an operator is told when it cannot be opened.

use cartie_store::Database;

/// A PostgreSQL server that refuses the connection is named as the cause at once, not after
/// the pool's wait as "pool timed out".
#[tokio::test]
async fn an_unreachable_postgresql_is_named_as_the_cause_at_once() {
    // Nothing listens on port 1 of the loopback address.
    let error = Database::connect("postgres://postgres@127.0.0.1:1/cartie", 2)
        .await
        .expect_err("nothing listens there");
    let message = error.to_string().to_lowercase();
    assert!(message.contains("refused"), "{message}");
    assert!(!message.contains("timed out"), "{message}");
}
