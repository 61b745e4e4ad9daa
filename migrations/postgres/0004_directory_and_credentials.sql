-- Directory read model: workspaces, people, memberships, API tokens (rebuilt by replay).
CREATE TABLE directory_workspaces
(
    workspace_id     uuid    NOT NULL PRIMARY KEY,
    slug             TEXT    NOT NULL UNIQUE,
    name             TEXT    NOT NULL,
    default_currency TEXT    NOT NULL,
    time_zone        TEXT    NOT NULL,
    created_at       timestamptz    NOT NULL,
    updated_at       timestamptz    NOT NULL
);

-- Sealed (encrypted) integration secrets; queries answer only whether one is set.
CREATE TABLE directory_workspace_secrets
(
    workspace_id uuid NOT NULL,
    name         TEXT NOT NULL,
    sealed       TEXT NOT NULL,
    updated_at   timestamptz NOT NULL,
    PRIMARY KEY (workspace_id, name)
);

CREATE TABLE directory_users
(
    user_id      uuid    NOT NULL PRIMARY KEY,
    email        TEXT    NOT NULL UNIQUE,
    name         TEXT    NOT NULL,
    has_password boolean NOT NULL,
    created_at   timestamptz    NOT NULL
);

CREATE TABLE directory_memberships
(
    workspace_id uuid    NOT NULL,
    user_id      uuid    NOT NULL,
    role         TEXT    NOT NULL,
    disabled     boolean NOT NULL,
    joined_at    timestamptz    NOT NULL,
    updated_at   timestamptz    NOT NULL,
    PRIMARY KEY (workspace_id, user_id)
);
CREATE INDEX directory_memberships_by_user ON directory_memberships (user_id);

CREATE TABLE directory_api_tokens
(
    token_id     uuid NOT NULL PRIMARY KEY,
    workspace_id uuid NOT NULL,
    name         TEXT NOT NULL,
    role         TEXT NOT NULL,
    created_by   TEXT NOT NULL,
    created_at   timestamptz NOT NULL,
    revoked_at   timestamptz
);
CREATE INDEX directory_api_tokens_by_workspace ON directory_api_tokens (workspace_id, created_at);

-- The credential store: hashes of passwords, API tokens and invitations. Not a read model
-- (the log never holds these), so replay leaves it alone.
CREATE TABLE credentials
(
    subject_id   uuid NOT NULL,
    kind         TEXT NOT NULL,
    secret_hash  TEXT NOT NULL,
    created_at   timestamptz NOT NULL,
    expires_at   timestamptz,
    last_used_at timestamptz,
    PRIMARY KEY (subject_id, kind)
);

-- Signed-in sessions and their single-use refresh tokens.
CREATE TABLE sessions
(
    session_id   uuid NOT NULL PRIMARY KEY,
    user_id      uuid NOT NULL,
    workspace_id uuid NOT NULL,
    created_at   timestamptz NOT NULL,
    refreshed_at timestamptz NOT NULL,
    revoked_at   timestamptz,
    revoked_why  TEXT
);
CREATE INDEX sessions_by_user ON sessions (user_id);

CREATE TABLE refresh_tokens
(
    token_id    uuid NOT NULL PRIMARY KEY,
    session_id  uuid NOT NULL REFERENCES sessions (session_id),
    secret_hash TEXT NOT NULL,
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz
);
CREATE INDEX refresh_tokens_by_session ON refresh_tokens (session_id);
