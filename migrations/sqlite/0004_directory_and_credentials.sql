-- Directory read model: workspaces, people, memberships, API tokens (rebuilt by replay).
CREATE TABLE directory_workspaces
(
    workspace_id     BLOB    NOT NULL PRIMARY KEY,
    slug             TEXT    NOT NULL UNIQUE,
    name             TEXT    NOT NULL,
    default_currency TEXT    NOT NULL,
    time_zone        TEXT    NOT NULL,
    created_at       TEXT    NOT NULL,
    updated_at       TEXT    NOT NULL
) STRICT;

-- Sealed (encrypted) integration secrets; queries answer only whether one is set.
CREATE TABLE directory_workspace_secrets
(
    workspace_id BLOB NOT NULL,
    name         TEXT NOT NULL,
    sealed       TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    PRIMARY KEY (workspace_id, name)
) STRICT;

CREATE TABLE directory_users
(
    user_id      BLOB    NOT NULL PRIMARY KEY,
    email        TEXT    NOT NULL UNIQUE,
    name         TEXT    NOT NULL,
    has_password INTEGER NOT NULL,
    created_at   TEXT    NOT NULL
) STRICT;

CREATE TABLE directory_memberships
(
    workspace_id BLOB    NOT NULL,
    user_id      BLOB    NOT NULL,
    role         TEXT    NOT NULL,
    disabled     INTEGER NOT NULL,
    joined_at    TEXT    NOT NULL,
    updated_at   TEXT    NOT NULL,
    PRIMARY KEY (workspace_id, user_id)
) STRICT;
CREATE INDEX directory_memberships_by_user ON directory_memberships (user_id);

CREATE TABLE directory_api_tokens
(
    token_id     BLOB NOT NULL PRIMARY KEY,
    workspace_id BLOB NOT NULL,
    name         TEXT NOT NULL,
    role         TEXT NOT NULL,
    created_by   TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    revoked_at   TEXT
) STRICT;
CREATE INDEX directory_api_tokens_by_workspace ON directory_api_tokens (workspace_id, created_at);

-- The credential store: hashes of passwords, API tokens and invitations. Not a read model
-- (the log never holds these), so replay leaves it alone.
CREATE TABLE credentials
(
    subject_id   BLOB NOT NULL,
    kind         TEXT NOT NULL,
    secret_hash  TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    expires_at   TEXT,
    last_used_at TEXT,
    PRIMARY KEY (subject_id, kind)
) STRICT;

-- Signed-in sessions and their single-use refresh tokens.
CREATE TABLE sessions
(
    session_id   BLOB NOT NULL PRIMARY KEY,
    user_id      BLOB NOT NULL,
    workspace_id BLOB NOT NULL,
    created_at   TEXT NOT NULL,
    refreshed_at TEXT NOT NULL,
    revoked_at   TEXT,
    revoked_why  TEXT
) STRICT;
CREATE INDEX sessions_by_user ON sessions (user_id);

CREATE TABLE refresh_tokens
(
    token_id    BLOB NOT NULL PRIMARY KEY,
    session_id  BLOB NOT NULL REFERENCES sessions (session_id),
    secret_hash TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    used_at     TEXT
) STRICT;
CREATE INDEX refresh_tokens_by_session ON refresh_tokens (session_id);
