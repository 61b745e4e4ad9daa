//! Accounts, sign-in, sessions, API tokens, roles, secrets and seeds through the GraphQL
//! API, and the isolation matrix: every operation of the schema, tried by one workspace on
//! another's objects.

mod support;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use cartie_api::access::POLICY;
use cartie_api::accounts::Throttle;
use cartie_api::seed;
use cartie_domain::member::Role;
use cartie_store::Backend;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};
use support::{code, field, ok, Api, Dealer, PASSWORD};

cartie_store::on_both_backends!(
    sign_in_refresh_rotation_and_sign_out,
    a_disabled_member_and_a_revoked_api_token_stop_working_at_once,
    a_token_revoked_through_another_server_stops_working_there_within_a_second,
    roles_gate_administration_but_every_member_uses_every_module,
    the_isolation_matrix_covers_every_operation_of_the_schema,
    seeds_are_idempotent,
);

const SIGN_IN: &str = "mutation($email: String!, $password: String!, $workspace: String) { \
    signIn(email: $email, password: $password, workspace: $workspace) { \
    accessToken accessTokenExpiresAt refreshToken role workspace { id slug } } }";

const REFRESH: &str = "mutation($token: String!) { refreshSession(refreshToken: $token) { \
    accessToken refreshToken role } }";

const ME: &str = "{ me { user { email } role platformAdmin workspace { slug } workspaces { slug role disabled } } }";

async fn sign_in(api: &Api, email: &str, password: &str, workspace: Option<&str>) -> Value {
    api.anonymous(
        SIGN_IN,
        json!({ "email": email, "password": password, "workspace": workspace }),
    )
    .await
}

fn slug() -> String {
    format!("ws-{}", &uuid::Uuid::now_v7().simple().to_string()[20..])
}

async fn sign_in_refresh_rotation_and_sign_out(backend: Backend) {
    let api = Api::new(backend).await;
    let dealer = api.dealer(&slug()).await;
    let signed = ok(sign_in(&api, &dealer.owner_email, PASSWORD, None).await)["signIn"].clone();
    assert_eq!(signed["role"], "OWNER");
    assert_eq!(signed["workspace"]["slug"], dealer.slug.as_str());
    let access = signed["accessToken"].as_str().unwrap().to_string();
    let refresh = signed["refreshToken"].as_str().unwrap().to_string();

    let me = ok(api.gql(&access, ME, json!({})).await);
    assert_eq!(me["me"]["user"]["email"], dealer.owner_email.as_str());
    assert_eq!(me["me"]["workspaces"][0]["role"], "OWNER");
    assert_eq!(me["me"]["platformAdmin"], false);

    // A refresh token works once; the new one works; the old one, presented again, ends
    // the session (someone holds a copy), so even the newest tokens stop working.
    // Clients often still send the expired access token when refreshing: public
    // operations ignore it.
    let (stale, _) = api
        .keys
        .issue(
            cartie_api::auth::AccessToken {
                workspace_id: dealer.id,
                user_id: dealer.owner,
                role: cartie_api::auth::Role::Owner,
                session_id: uuid::Uuid::now_v7(),
            },
            chrono::Duration::hours(-1),
        )
        .unwrap();
    let rotated =
        ok(api.gql(&stale, REFRESH, json!({ "token": refresh })).await)["refreshSession"].clone();
    let second_refresh = rotated["refreshToken"].as_str().unwrap().to_string();
    assert_ne!(second_refresh, refresh);
    let second_access = rotated["accessToken"].as_str().unwrap().to_string();
    ok(api.gql(&second_access, ME, json!({})).await);
    let reused = api.anonymous(REFRESH, json!({ "token": refresh })).await;
    assert_eq!(code(&reused), "UNAUTHENTICATED");
    let after_reuse = api
        .anonymous(REFRESH, json!({ "token": second_refresh }))
        .await;
    assert_eq!(
        code(&after_reuse),
        "UNAUTHENTICATED",
        "the session ended on reuse"
    );
    let (status, _) = api.request(Some(&second_access), ME, json!({})).await;
    assert_eq!(
        status.as_u16(),
        401,
        "access tokens of an ended session stop working"
    );

    // Signing out ends the session at once, access token included.
    let fresh = ok(sign_in(&api, &dealer.owner_email, PASSWORD, None).await)["signIn"].clone();
    let fresh_access = fresh["accessToken"].as_str().unwrap();
    let fresh_refresh = fresh["refreshToken"].as_str().unwrap();
    let out = ok(api
        .gql(
            fresh_access,
            "mutation($t: String) { signOut(refreshToken: $t) }",
            json!({ "t": fresh_refresh }),
        )
        .await);
    assert_eq!(out["signOut"], true);
    let (status, body) = api.request(Some(fresh_access), ME, json!({})).await;
    assert_eq!(status.as_u16(), 401, "{body}");
    assert_eq!(
        code(
            &api.anonymous(REFRESH, json!({ "token": fresh_refresh }))
                .await
        ),
        "UNAUTHENTICATED"
    );

    // Wrong password and unknown e-mail: the same answer.
    let wrong = sign_in(&api, &dealer.owner_email, "not-the-password-1", None).await;
    let unknown = sign_in(&api, "nobody@nowhere.example", "not-the-password-1", None).await;
    assert_eq!(code(&wrong), "UNAUTHENTICATED");
    assert_eq!(
        wrong["errors"][0]["message"],
        unknown["errors"][0]["message"]
    );
    assert_eq!(code(&unknown), "UNAUTHENTICATED");
    // A workspace the person does not belong to.
    let other = api.dealer(&slug()).await;
    let foreign = sign_in(&api, &dealer.owner_email, PASSWORD, Some(&other.slug)).await;
    assert_eq!(code(&foreign), "FORBIDDEN");
    api.shutdown().await;
}

#[tokio::test]
async fn unknown_e_mails_and_wrong_passwords_take_the_same_time() {
    let api = Api::with_throttle(
        Backend::Sqlite,
        Throttle::new(
            1000,
            Duration::from_millis(1),
            1000,
            Duration::from_millis(1),
        ),
    )
    .await;
    let dealer = api.dealer("timing-motors").await;
    let mut known = Vec::new();
    let mut unknown = Vec::new();
    for round in 0..11 {
        let started = Instant::now();
        let response = sign_in(&api, &dealer.owner_email, "wrong-password-123", None).await;
        known.push(started.elapsed());
        assert_eq!(code(&response), "UNAUTHENTICATED");
        let started = Instant::now();
        let response = sign_in(
            &api,
            &format!("ghost{round}@nowhere.example"),
            "wrong-password-123",
            None,
        )
        .await;
        unknown.push(started.elapsed());
        assert_eq!(code(&response), "UNAUTHENTICATED");
    }
    known.sort();
    unknown.sort();
    let (k, u) = (known[5].as_secs_f64(), unknown[5].as_secs_f64());
    // Both answers verify one argon2id hash: medians within a factor of three (the tests
    // share two cores with the rest of the suite), where a shortcut for unknown e-mails
    // would be orders of magnitude faster.
    assert!(u > k / 3.0 && u < k * 3.0, "known {k:.4}s, unknown {u:.4}s");
    api.shutdown().await;
}

#[tokio::test]
async fn repeated_attempts_are_throttled_per_e_mail_and_per_client_address() {
    let api = Api::with_throttle(
        Backend::Sqlite,
        Throttle::new(3, Duration::from_secs(60), 5, Duration::from_secs(60)),
    )
    .await;
    let dealer = api.dealer("throttle-motors").await;
    for _ in 0..3 {
        let response = sign_in(&api, &dealer.owner_email, "wrong-password-123", None).await;
        assert_eq!(code(&response), "UNAUTHENTICATED");
    }
    // The right password no longer helps for a while.
    let limited = sign_in(&api, &dealer.owner_email, PASSWORD, None).await;
    assert_eq!(code(&limited), "RATE_LIMITED", "{limited}");
    assert!(
        limited["errors"][0]["extensions"]["retryAfterSeconds"]
            .as_u64()
            .unwrap()
            >= 1
    );

    // One client address trying many e-mails.
    let client: SocketAddr = "203.0.113.7:40000".parse().unwrap();
    let mut codes = Vec::new();
    for n in 0..6 {
        let body = json!({ "query": SIGN_IN, "variables": { "email": format!("guess{n}@x.example"), "password": "wrong-password-123" } });
        let (_, response) = api
            .post_from(None, axum::body::Body::from(body.to_string()), Some(client))
            .await;
        codes.push(code(&response).to_string());
    }
    assert_eq!(codes[..5], ["UNAUTHENTICATED"; 5]);
    assert_eq!(codes[5], "RATE_LIMITED");
    // Another address is not affected.
    let other: SocketAddr = "198.51.100.9:40000".parse().unwrap();
    let body = json!({ "query": SIGN_IN, "variables": { "email": "guess@x.example", "password": "wrong-password-123" } });
    let (_, response) = api
        .post_from(None, axum::body::Body::from(body.to_string()), Some(other))
        .await;
    assert_eq!(code(&response), "UNAUTHENTICATED");
    api.shutdown().await;
}

/// An integration's token is accepted on what a server read within the last second
/// (ADR 0020): revoked through another server on the same database, it is refused by that
/// one at once and by this one within a second.
async fn a_token_revoked_through_another_server_stops_working_there_within_a_second(
    backend: Backend,
) {
    let mut api = Api::new(backend).await;
    let dealer = api.dealer("revoke-motors").await;
    let created = ok(api
        .gql(
            &dealer.token,
            "mutation { createApiToken(name: \"Adapter\") { token apiToken { id } } }",
            json!({}),
        )
        .await)["createApiToken"]
        .clone();
    let token = created["token"].as_str().unwrap().to_string();
    let listings = "{ listings { totalCount } }";
    let (status, _) = api.request(Some(&token), listings, json!({})).await;
    assert_eq!(status.as_u16(), 200, "this server has now read the token");

    let other = cartie_api::app::App::start_with(
        api.test.db.clone(),
        support::test_keys(),
        Throttle::default(),
    );
    let this_router = std::mem::replace(&mut api.router, other.router());
    ok(api
        .gql(
            &dealer.token,
            "mutation($id: ID!) { revokeApiToken(id: $id) { revokedAt } }",
            json!({ "id": created["apiToken"]["id"] }),
        )
        .await);
    let (status, _) = api.request(Some(&token), listings, json!({})).await;
    assert_eq!(status.as_u16(), 401, "refused at once where it was revoked");
    other.shutdown().await;

    api.router = this_router;
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let (status, body) = api.request(Some(&token), listings, json!({})).await;
    assert_eq!(status.as_u16(), 401, "refused here a second later: {body}");
    api.shutdown().await;
}

async fn a_disabled_member_and_a_revoked_api_token_stop_working_at_once(backend: Backend) {
    let api = Api::new(backend).await;
    let dealer = api.dealer(&slug()).await;
    let colleague = api
        .person(dealer.id, "colleague@motors.example", Role::Member)
        .await;
    let colleague_token = api.session(colleague, dealer.id).await;
    ok(api
        .gql(&colleague_token, "{ listings { totalCount } }", json!({}))
        .await);

    let disabled = ok(api
        .gql(
            &dealer.token,
            "mutation($id: ID!) { disableMember(memberId: $id) { disabled } }",
            json!({ "id": colleague.to_string() }),
        )
        .await);
    assert_eq!(disabled["disableMember"]["disabled"], true);
    let (status, body) = api
        .request(
            Some(&colleague_token),
            "{ listings { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(status.as_u16(), 401, "{body}");
    let again = sign_in(&api, "colleague@motors.example", PASSWORD, None).await;
    assert_eq!(code(&again), "FORBIDDEN", "no active workspace: {again}");
    ok(api
        .gql(
            &dealer.token,
            "mutation($id: ID!) { enableMember(memberId: $id) { disabled } }",
            json!({ "id": colleague.to_string() }),
        )
        .await);
    ok(api
        .gql(&colleague_token, "{ listings { totalCount } }", json!({}))
        .await);

    // API tokens: shown once, stored as a hash, listed with last use, revocable.
    let created = ok(api
        .gql(
            &dealer.token,
            "mutation { createApiToken(name: \"CRM sync\", role: ADMIN) { token apiToken { id name role createdBy revokedAt } } }",
            json!({}),
        )
        .await)["createApiToken"]
        .clone();
    let token = created["token"].as_str().unwrap().to_string();
    assert!(token.starts_with("cartie_at_"));
    assert_eq!(created["apiToken"]["role"], "ADMIN");
    assert_eq!(
        created["apiToken"]["createdBy"],
        format!("user:{}", dealer.owner).as_str()
    );
    let listed = ok(api
        .gql(&token, "{ apiTokens { id name lastUsedAt } }", json!({}))
        .await);
    assert_eq!(listed["apiTokens"][0]["name"], "CRM sync");
    assert!(listed["apiTokens"][0]["lastUsedAt"].is_string(), "{listed}");
    assert!(
        !listed.to_string().contains(&token[20..]),
        "the secret is never listed"
    );
    let me = api.gql(&token, ME, json!({})).await;
    assert_eq!(code(&me), "FORBIDDEN", "an API token is not a person");
    let revoked = ok(api
        .gql(
            &dealer.token,
            "mutation($id: ID!) { revokeApiToken(id: $id) { revokedAt } }",
            json!({ "id": created["apiToken"]["id"] }),
        )
        .await);
    assert!(revoked["revokeApiToken"]["revokedAt"].is_string());
    let (status, body) = api
        .request(Some(&token), "{ listings { totalCount } }", json!({}))
        .await;
    assert_eq!(status.as_u16(), 401, "{body}");

    // Nothing secret reached the log.
    let log = cartie_store::EventLog::new(api.test.db.clone());
    let events = log
        .read_after(cartie_store::LogPosition::default(), 10_000)
        .await
        .unwrap();
    let everything: String = events
        .iter()
        .map(|e| format!("{} {}", e.payload_json, e.metadata_json))
        .collect();
    assert!(!everything.contains(&token[20..]));
    assert!(!everything.contains(PASSWORD));
    assert!(!everything.contains("$argon2"));
    api.shutdown().await;
}

async fn roles_gate_administration_but_every_member_uses_every_module(backend: Backend) {
    let api = Api::new(backend).await;
    let dealer = api.dealer(&slug()).await;
    let member = api
        .person(dealer.id, "member@motors.example", Role::Member)
        .await;
    let member_token = api.session(member, dealer.id).await;
    let admin = api
        .person(dealer.id, "admin@motors.example", Role::Admin)
        .await;
    let admin_token = api.session(admin, dealer.id).await;

    // Members use every module: inventory writes included.
    ok(api
        .gql(
            &member_token,
            "mutation { createListing(input: { title: \"Skoda Octavia\" }) { id } }",
            json!({}),
        )
        .await);
    // But not administration.
    for query in [
        "mutation { renameWorkspace(name: \"Mine\") { name } }",
        "mutation { createApiToken(name: \"x\") { token } }",
        "{ apiTokens { id } }",
        "mutation { inviteMember(input: { email: \"x@y.example\", name: \"X\" }) { invitationToken } }",
    ] {
        assert_eq!(code(&api.gql(&member_token, query, json!({})).await), "FORBIDDEN", "{query}");
    }
    // Admins administer, but only owners touch owners.
    let renamed = ok(api
        .gql(
            &admin_token,
            "mutation { renameWorkspace(name: \"Kyiv Motors\") { name } }",
            json!({}),
        )
        .await);
    assert_eq!(renamed["renameWorkspace"]["name"], "Kyiv Motors");
    let promote = api
        .gql(
            &admin_token,
            "mutation($id: ID!) { changeMemberRole(memberId: $id, role: OWNER) { role } }",
            json!({ "id": member.to_string() }),
        )
        .await;
    assert_eq!(code(&promote), "FORBIDDEN");
    let demote_owner = api
        .gql(
            &admin_token,
            "mutation($id: ID!) { disableMember(memberId: $id) { disabled } }",
            json!({ "id": dealer.owner.to_string() }),
        )
        .await;
    assert_eq!(code(&demote_owner), "FORBIDDEN");
    // The last owner cannot leave the workspace ownerless.
    let last = api
        .gql(
            &dealer.token,
            "mutation($id: ID!) { changeMemberRole(memberId: $id, role: ADMIN) { role } }",
            json!({ "id": dealer.owner.to_string() }),
        )
        .await;
    assert_eq!(code(&last), "CONFLICT", "{last}");
    // A role change applies to existing sessions at once.
    ok(api
        .gql(
            &dealer.token,
            "mutation($id: ID!) { changeMemberRole(memberId: $id, role: ADMIN) { role } }",
            json!({ "id": member.to_string() }),
        )
        .await);
    ok(api
        .gql(&member_token, "{ apiTokens { id } }", json!({}))
        .await);

    // Secrets: set, listed as set, never shown; bad names refused naming the field.
    let set = ok(api
        .gql(
            &admin_token,
            "mutation { setIntegrationSecret(name: \"crm.api_key\", value: \"s3cr3t-value-123\") { name set updatedAt } }",
            json!({}),
        )
        .await);
    assert_eq!(set["setIntegrationSecret"]["set"], true);
    let shown = ok(api
        .gql(
            &admin_token,
            "{ workspace { secrets { name set } } }",
            json!({}),
        )
        .await);
    assert_eq!(
        shown["workspace"]["secrets"],
        json!([{ "name": "crm.api_key", "set": true }])
    );
    let from_member = api
        .gql(
            &api.session(
                api.person(dealer.id, "m2@motors.example", Role::Member)
                    .await,
                dealer.id,
            )
            .await,
            "{ workspace { name secrets { name } } }",
            json!({}),
        )
        .await;
    assert_eq!(code(&from_member), "FORBIDDEN");
    assert!(
        from_member["data"]["workspace"]["name"].is_string(),
        "{from_member}"
    );
    assert!(from_member["data"]["workspace"]["secrets"].is_null());
    let bad = api
        .gql(
            &admin_token,
            "mutation { setIntegrationSecret(name: \"Bad Name\", value: \"v\") { name } }",
            json!({}),
        )
        .await;
    assert_eq!((code(&bad), field(&bad)), ("VALIDATION", "name"));
    let sealed = cartie_projections::directory::queries::sealed_secret(
        &api.test.db,
        dealer.id.0,
        "crm.api_key",
    )
    .await
    .unwrap()
    .unwrap();
    assert!(!sealed.contains("s3cr3t"));
    let opened = api
        .services()
        .secret_key
        .open(
            dealer.id,
            &cartie_domain::workspace::SecretName::parse("n", "crm.api_key").unwrap(),
            &cartie_domain::workspace::SealedSecret(sealed),
        )
        .unwrap();
    assert_eq!(opened.expose_secret(), "s3cr3t-value-123");

    // Settings: a bad time zone names the field; a good one applies.
    let bad_tz = api
        .gql(
            &admin_token,
            "mutation { changeWorkspaceSettings(input: { timeZone: \"Mars/Base\" }) { timeZone } }",
            json!({}),
        )
        .await;
    assert_eq!((code(&bad_tz), field(&bad_tz)), ("VALIDATION", "timeZone"));
    let tz = ok(api
        .gql(&admin_token, "mutation { changeWorkspaceSettings(input: { timeZone: \"Europe/Warsaw\", defaultCurrency: PLN }) { timeZone defaultCurrency } }", json!({}))
        .await);
    assert_eq!(
        tz["changeWorkspaceSettings"],
        json!({ "timeZone": "Europe/Warsaw", "defaultCurrency": "PLN" })
    );

    // Invitations: weak passwords are refused with a reason; a strong one signs in.
    let invited = ok(api
        .gql(
            &admin_token,
            "mutation { inviteMember(input: { email: \"New.Hire@Motors.example\", name: \"Taras\" }) { invitationToken member { email role } } }",
            json!({}),
        )
        .await)["inviteMember"]
        .clone();
    assert_eq!(invited["member"]["email"], "new.hire@motors.example");
    let invitation = invited["invitationToken"].as_str().unwrap();
    let accept = "mutation($t: String!, $p: String!) { acceptInvitation(token: $t, password: $p) { accessToken role } }";
    let weak = api
        .anonymous(accept, json!({ "t": invitation, "p": "password1234" }))
        .await;
    assert_eq!((code(&weak), field(&weak)), ("VALIDATION", "password"));
    assert!(
        weak["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("weak"),
        "{weak}"
    );
    let accepted = ok(api
        .anonymous(
            accept,
            json!({ "t": invitation, "p": "harbour-cobalt-violin-58" }),
        )
        .await);
    assert_eq!(accepted["acceptInvitation"]["role"], "MEMBER");
    let reused = api
        .anonymous(
            accept,
            json!({ "t": invitation, "p": "harbour-cobalt-violin-58" }),
        )
        .await;
    assert_eq!(code(&reused), "VALIDATION", "an invitation works once");

    // Changing a password checks the current one and ends the other sessions.
    let second_session = api.session(admin, dealer.id).await;
    let wrong = api
        .gql(
            &admin_token,
            "mutation { changePassword(currentPassword: \"nope-nope-nope\", newPassword: \"x\") }",
            json!({}),
        )
        .await;
    assert_eq!(
        (code(&wrong), field(&wrong)),
        ("VALIDATION", "currentPassword")
    );
    ok(api
        .gql(
            &admin_token,
            "mutation($c: String!) { changePassword(currentPassword: $c, newPassword: \"quartz-meadow-falcon-33\") }",
            json!({ "c": PASSWORD }),
        )
        .await);
    let (status, _) = api.request(Some(&second_session), ME, json!({})).await;
    assert_eq!(status.as_u16(), 401);
    ok(api.gql(&admin_token, ME, json!({})).await);
    ok(sign_in(
        &api,
        "admin@motors.example",
        "quartz-meadow-falcon-33",
        None,
    )
    .await);
    api.shutdown().await;
}

/// A's objects, as A sees them: must be the same after B tried everything.
async fn snapshot(api: &Api, a: &Dealer) -> Value {
    ok(api
        .gql(
            &a.token,
            "{ workspace { name defaultCurrency timeZone secrets { name updatedAt } } \
             members { id role disabled } apiTokens { id revokedAt } \
             listings { totalCount edges { node { id version status } } } \
             conversations { nodes { id messageCount unreadCount closed blocked assigneeId lastMessagePreview \
             messages { nodes { seq text } } } } \
             leads { nodes { id status notes assigneeId name } } }",
            json!({}),
        )
        .await)
}

/// How the isolation matrix tries an operation from workspace B.
enum Case {
    /// Names one of A's objects: refused as NOT_FOUND (or FORBIDDEN).
    Targets(&'static str),
    /// Acts on the caller's own workspace: answers without any of A's identifiers.
    OwnWorkspace(&'static str),
    /// Public (signing in and the like): cannot reach A without A's secrets.
    Public(&'static str, &'static [&'static str]),
    /// Platform administration: refused as FORBIDDEN.
    Platform(&'static str),
    /// A subscription: tried over a WebSocket by `api/tests/inbox.rs`
    /// (`subscribers_receive_new_messages_over_a_websocket_within_a_second`).
    OverWebSocket,
}

fn matrix() -> Vec<(&'static str, Case)> {
    use Case::*;
    vec![
        ("listings", OwnWorkspace("{ listings { totalCount edges { node { id title } } } }")),
        ("listing", Targets("query($listing: ID!) { listing(id: $listing) { id } }")),
        ("createListing", OwnWorkspace("mutation { createListing(input: { title: \"B's car\" }) { id } }")),
        ("updateListing", Targets("mutation($listing: ID!) { updateListing(input: { id: $listing, title: \"taken\" }) { id } }")),
        ("changeListingPrice", Targets("mutation($listing: ID!) { changeListingPrice(input: { id: $listing, price: { amountMinor: 1, currency: USD } }) { id } }")),
        ("changeListingStatus", Targets("mutation($listing: ID!) { changeListingStatus(input: { id: $listing, status: ARCHIVED }) { id } }")),
        ("setListingPhotos", Targets("mutation($listing: ID!) { setListingPhotos(input: { id: $listing, photos: [] }) { id } }")),
        ("signIn", Public("mutation($bEmail: String!, $password: String!, $aSlug: String!) { signIn(email: $bEmail, password: $password, workspace: $aSlug) { accessToken } }", &["FORBIDDEN"])),
        ("refreshSession", Public("mutation { refreshSession(refreshToken: \"cartie_rt_0000000000000000000000000000000a_forged\") { accessToken } }", &["UNAUTHENTICATED"])),
        ("acceptInvitation", Public("mutation { acceptInvitation(token: \"cartie_inv_0000000000000000000000000000000a_forged\", password: \"harbour-cobalt-violin-58\") { accessToken } }", &["VALIDATION"])),
        ("me", OwnWorkspace("{ me { user { id email } workspace { id slug } workspaces { workspaceId slug } } }")),
        ("switchWorkspace", Targets("mutation($aSlug: String!) { switchWorkspace(workspace: $aSlug) { accessToken } }")),
        ("changePassword", OwnWorkspace("mutation { changePassword(currentPassword: \"wrong-wrong-wrong\", newPassword: \"quartz-meadow-falcon-33\") }")),
        ("workspace", OwnWorkspace("{ workspace { id slug name secrets { name } } }")),
        ("members", OwnWorkspace("{ members { id email } }")),
        ("apiTokens", OwnWorkspace("{ apiTokens { id name } }")),
        ("renameWorkspace", OwnWorkspace("mutation { renameWorkspace(name: \"B renamed\") { id name } }")),
        ("changeWorkspaceSettings", OwnWorkspace("mutation { changeWorkspaceSettings(input: { defaultCurrency: GBP }) { id } }")),
        ("setIntegrationSecret", OwnWorkspace("mutation { setIntegrationSecret(name: \"crm.api_key\", value: \"b-value\") { name } }")),
        ("clearIntegrationSecret", OwnWorkspace("mutation { clearIntegrationSecret(name: \"crm.api_key\") }")),
        ("inviteMember", OwnWorkspace("mutation { inviteMember(input: { email: \"b-hire@b.example\", name: \"B hire\" }) { member { id } } }")),
        ("changeMemberRole", Targets("mutation($member: ID!) { changeMemberRole(memberId: $member, role: MEMBER) { id } }")),
        ("disableMember", Targets("mutation($member: ID!) { disableMember(memberId: $member) { id } }")),
        ("enableMember", Targets("mutation($member: ID!) { enableMember(memberId: $member) { id } }")),
        ("createApiToken", OwnWorkspace("mutation { createApiToken(name: \"B bot\") { apiToken { id } } }")),
        ("revokeApiToken", Targets("mutation($token: ID!) { revokeApiToken(id: $token) { id } }")),
        ("platformWorkspaces", Platform("{ platformWorkspaces { id slug } }")),
        ("createWorkspace", Platform("mutation { createWorkspace(input: { name: \"X\", slug: \"x-motors\", defaultCurrency: USD, timeZone: \"Europe/Kyiv\", ownerEmail: \"x@x.example\", ownerName: \"X\" }) { workspace { id } } }")),
        ("conversations", OwnWorkspace("{ conversations { nodes { id botId contact { displayName } lastMessagePreview } } }")),
        ("conversation", Targets("query($conversation: ID!) { conversation(id: $conversation) { id } }")),
        ("leads", OwnWorkspace("{ leads { nodes { id name phone } } }")),
        ("lead", Targets("query($lead: ID!) { lead(id: $lead) { id } }")),
        ("sendMessage", Targets("mutation($conversation: ID!) { sendMessage(input: { conversationId: $conversation, content: { kind: TEXT, text: \"hi\" } }) { seq } }")),
        ("markRead", Targets("mutation($conversation: ID!) { markRead(conversationId: $conversation) { id } }")),
        ("assignConversation", Targets("mutation($conversation: ID!) { assignConversation(conversationId: $conversation) { id } }")),
        ("closeConversation", Targets("mutation($conversation: ID!) { closeConversation(conversationId: $conversation) { id } }")),
        ("reopenConversation", Targets("mutation($conversation: ID!) { reopenConversation(conversationId: $conversation) { id } }")),
        ("recordInboundMessage", OwnWorkspace("mutation { recordInboundMessage(input: { botId: \"0190c2a4-6f3e-7a1b-9c2d-000000000b07\", chatId: 42, updateId: 1, telegramMessageId: 1, from: { firstName: \"Buyer\" }, content: { kind: TEXT, text: \"hello\" }, sentAt: \"2026-11-22T10:00:00Z\" }) { conversationId } }")),
        ("recordBotBlocked", Targets("mutation($bot: ID!) { recordBotBlocked(botId: $bot, chatId: 42, updateId: 99) { id } }")),
        ("captureLead", Targets("mutation($conversation: ID!) { captureLead(input: { name: \"taken\", conversationId: $conversation }) { id } }")),
        ("changeLeadStatus", Targets("mutation($lead: ID!) { changeLeadStatus(id: $lead, status: CONTACTED) { id } }")),
        ("addLeadNote", Targets("mutation($lead: ID!) { addLeadNote(id: $lead, text: \"taken\") { id } }")),
        ("inboxChanged", OverWebSocket),
        ("conversationMessages", OverWebSocket),
        ("assignLead", Targets("mutation($lead: ID!) { assignLead(id: $lead) { id } }")),
        ("bots", OwnWorkspace("{ bots { id username } }")),
        ("bot", Targets("query($bot: ID!) { bot(id: $bot) { id } }")),
        ("registerBot", OwnWorkspace("mutation { registerBot(input: { token: \"1:not-a-token\", mode: POLLING }) { id } }")),
        ("updateBot", Targets("mutation($bot: ID!) { updateBot(input: { botId: $bot, mode: POLLING }) { id } }")),
        ("rotateBotToken", Targets("mutation($bot: ID!) { rotateBotToken(input: { botId: $bot, token: \"1:not-a-token\" }) { id } }")),
        ("disableBot", Targets("mutation($bot: ID!) { disableBot(botId: $bot) { id } }")),
        ("enableBot", Targets("mutation($bot: ID!) { enableBot(botId: $bot) { id } }")),
        ("requests", OwnWorkspace("{ requests { totalCount nodes { id client { name } } } }")),
        ("request", Targets("query($request: ID!) { request(id: $request) { id } }")),
        ("requestMatches", Targets("query($request: ID!) { requestMatches(id: $request) { id } }")),
        ("partners", OwnWorkspace("{ partners { id name } }")),
        ("partner", Targets("query($partner: ID!) { partner(id: $partner) { id } }")),
        ("draftRequest", OwnWorkspace("mutation { draftRequest(input: { client: { name: \"B client\" } }) { id } }")),
        ("editRequest", Targets("mutation($request: ID!) { editRequest(input: { id: $request, client: { name: \"taken\" } }) { id } }")),
        ("publishRequest", Targets("mutation($request: ID!) { publishRequest(input: { id: $request, allPartners: true }) { id } }")),
        ("assignRequest", Targets("mutation($request: ID!) { assignRequest(id: $request) { id } }")),
        ("offerListing", Targets("mutation($request: ID!, $listing: ID!) { offerListing(input: { requestId: $request, listingId: $listing, price: { amountMinor: 1, currency: USD } }) { id } }")),
        ("shortlistVariant", Targets("mutation($variant: ID!) { shortlistVariant(variantId: $variant) { id } }")),
        ("rejectVariant", Targets("mutation($variant: ID!) { rejectVariant(variantId: $variant, reason: \"no\") { id } }")),
        ("acceptVariant", Targets("mutation($variant: ID!) { acceptVariant(variantId: $variant) { id } }")),
        ("shareProposal", Targets("mutation($request: ID!) { shareProposal(requestId: $request) { token } }")),
        ("revokeProposal", Targets("mutation($request: ID!, $variant: ID!) { revokeProposal(requestId: $request, proposalId: $variant) { id } }")),
        ("closeRequestWon", Targets("mutation($request: ID!, $variant: ID!) { closeRequestWon(id: $request, variantId: $variant) { id } }")),
        ("closeRequestLost", Targets("mutation($request: ID!) { closeRequestLost(id: $request, reason: \"taken\") { id } }")),
        ("recordChannelPost", Targets("mutation($request: ID!) { recordChannelPost(id: $request, channel: \"@b\", messageId: 1) { id } }")),
        ("registerPartner", OwnWorkspace("mutation { registerPartner(input: { name: \"B partner\" }) { id } }")),
        ("updatePartner", Targets("mutation($partner: ID!) { updatePartner(id: $partner, input: { name: \"taken\" }) { id } }")),
        ("deactivatePartner", Targets("mutation($partner: ID!) { deactivatePartner(id: $partner) { id } }")),
        ("reactivatePartner", Targets("mutation($partner: ID!) { reactivatePartner(id: $partner) { id } }")),
        ("createPartnerToken", Targets("mutation($partner: ID!) { createPartnerToken(partnerId: $partner, name: \"taken\") { token } }")),
        // Partners only: B's owner and B's token are refused.
        ("partnerRequests", Targets("{ partnerRequests { nodes { id } } }")),
        ("partnerRequest", Targets("query($request: ID!) { partnerRequest(id: $request) { id } }")),
        ("offerVariant", Targets("mutation($request: ID!) { offerVariant(input: { requestId: $request, title: \"x\", price: { amountMinor: 1, currency: USD } }) { id } }")),
        ("submitRequest", Public("mutation { submitRequest(workspaceSlug: \"no-such-dealer\", input: { phone: \"+380671234567\" }) { reference } }", &["NOT_FOUND"])),
        ("proposal", Public("{ proposal(token: \"cartie_pp_0000000000000000000000000000000a_forged\") { dealer } }", &["NOT_FOUND"])),
        // Tried over a WebSocket in api/tests/requests.rs.
        ("requestChanged", OverWebSocket),
        // Last: it ends the caller's own session.
        ("signOut", OwnWorkspace("mutation { signOut }")),
    ]
}

async fn the_isolation_matrix_covers_every_operation_of_the_schema(backend: Backend) {
    let api = Api::new(backend).await;
    // The operations the schema serves, and the access policy, agree.
    let schema = ok(api
        .anonymous(
            "{ __schema { queryType { fields { name } } mutationType { fields { name } } subscriptionType { fields { name } } } }",
            json!({}),
        )
        .await);
    let mut operations = BTreeSet::new();
    for (root, kind) in [
        ("Query", "queryType"),
        ("Mutation", "mutationType"),
        ("Subscription", "subscriptionType"),
    ] {
        for f in schema["__schema"][kind]["fields"].as_array().unwrap() {
            operations.insert((root, f["name"].as_str().unwrap().to_string()));
        }
    }
    let policy: BTreeSet<_> = POLICY.iter().map(|(r, f, _)| (*r, f.to_string())).collect();
    assert_eq!(
        operations, policy,
        "every operation is in the access policy, and only those"
    );
    let matrix = matrix();
    for (_, operation) in &operations {
        assert!(
            matrix.iter().any(|(name, _)| name == operation),
            "operation `{operation}` is not classified in the isolation matrix"
        );
    }

    // Workspace A with one of everything.
    let a = api.dealer(&slug()).await;
    let colleague = api
        .person(a.id, &format!("colleague@{}.example", a.slug), Role::Member)
        .await;
    let listing = ok(api
        .gql(
            &a.token,
            "mutation { createListing(input: { title: \"A's Camry\" }) { id } }",
            json!({}),
        )
        .await)["createListing"]["id"]
        .clone();
    let token_id = ok(api
        .gql(
            &a.token,
            "mutation { createApiToken(name: \"A bot\") { apiToken { id } } }",
            json!({}),
        )
        .await)["createApiToken"]["apiToken"]["id"]
        .clone();
    ok(api
        .gql(
            &a.token,
            "mutation { setIntegrationSecret(name: \"crm.api_key\", value: \"a-value\") { name } }",
            json!({}),
        )
        .await);
    let a_bot_token = ok(api
        .gql(
            &a.token,
            "mutation { createApiToken(name: \"A telegram\") { token } }",
            json!({}),
        )
        .await)["createApiToken"]["token"]
        .as_str()
        .unwrap()
        .to_string();
    let a_bot = "0190c2a4-6f3e-7a1b-9c2d-00000000a007";
    let conversation = ok(api
        .gql(
            &a_bot_token,
            "mutation($bot: ID!) { recordInboundMessage(input: { botId: $bot, chatId: 42, updateId: 7, \
             telegramMessageId: 70, from: { firstName: \"Olha\", username: \"olha_buys\" }, \
             content: { kind: TEXT, text: \"Is the Camry available?\" }, sentAt: \"2026-11-22T10:00:00Z\" }) { conversation { id } } }",
            json!({ "bot": a_bot }),
        )
        .await)["recordInboundMessage"]["conversation"]["id"]
        .clone();
    let lead = ok(api
        .gql(
            &a.token,
            "mutation($c: ID!) { captureLead(input: { name: \"Olha\", phone: \"067 123 45 67\", conversationId: $c }) { id } }",
            json!({ "c": conversation }),
        )
        .await)["captureLead"]["id"]
        .clone();
    let partner = ok(api
        .gql(
            &a.token,
            "mutation { registerPartner(input: { name: \"A's partner\" }) { id } }",
            json!({}),
        )
        .await)["registerPartner"]["id"]
        .clone();
    let request = ok(api
        .gql(
            &a.token,
            "mutation { draftRequest(input: { client: { name: \"Olha\" } }) { id } }",
            json!({}),
        )
        .await)["draftRequest"]["id"]
        .clone();
    let variant = ok(api
        .gql(
            &a.token,
            "mutation($r: ID!, $l: ID!) { offerListing(input: { requestId: $r, listingId: $l, price: { amountMinor: 100, currency: USD } }) { id } }",
            json!({ "r": request, "l": listing }),
        )
        .await)["offerListing"]["id"]
        .clone();
    // A person invited by A who has not set a password yet.
    let pending = ok(api
        .gql(
            &a.token,
            "mutation { inviteMember(input: { email: \"pending@a.example\", name: \"Pending\" }) { invitationToken } }",
            json!({}),
        )
        .await);
    assert!(pending["inviteMember"]["invitationToken"].is_string());
    let before = snapshot(&api, &a).await;

    // Workspace B's owner, and B's admin API token.
    let b = api.dealer(&slug()).await;
    let b_bot = ok(api
        .gql(
            &b.token,
            "mutation { createApiToken(name: \"B admin bot\", role: ADMIN) { token } }",
            json!({}),
        )
        .await)["createApiToken"]["token"]
        .as_str()
        .unwrap()
        .to_string();
    // B may invite the same person, but gets no invitation: it would set the password of
    // an account that A's membership depends on.
    let poached = ok(api
        .gql(
            &b.token,
            "mutation { inviteMember(input: { email: \"pending@a.example\", name: \"Pending\" }) { invitationToken } }",
            json!({}),
        )
        .await);
    assert!(
        poached["inviteMember"]["invitationToken"].is_null(),
        "{poached}"
    );
    let variables = json!({
        "listing": listing, "member": colleague.to_string(), "token": token_id,
        "conversation": conversation, "lead": lead, "bot": a_bot,
        "aSlug": a.slug, "bEmail": b.owner_email, "password": PASSWORD,
        "partner": partner, "request": request, "variant": variant,
    });
    let a_identifiers = [
        a.id.to_string(),
        a.slug.clone(),
        listing.as_str().unwrap().to_string(),
        colleague.to_string(),
        token_id.as_str().unwrap().to_string(),
        a.owner_email.clone(),
        conversation.as_str().unwrap().to_string(),
        lead.as_str().unwrap().to_string(),
        a_bot.to_string(),
        "olha_buys".to_string(),
        partner.as_str().unwrap().to_string(),
        request.as_str().unwrap().to_string(),
        variant.as_str().unwrap().to_string(),
    ];
    for caller in [&b.token, &b_bot] {
        for (operation, case) in &matrix {
            let (query, expected): (&str, &[&str]) = match case {
                Case::Targets(q) => (q, &["NOT_FOUND", "FORBIDDEN"]),
                Case::Platform(q) => (q, &["FORBIDDEN"]),
                Case::Public(q, codes) => (q, codes),
                Case::OwnWorkspace(q) => (q, &[]),
                Case::OverWebSocket => continue,
            };
            let response = api.gql(caller, query, variables.clone()).await;
            if expected.is_empty() {
                let text = response.to_string();
                for id in &a_identifiers {
                    assert!(
                        !text.contains(id.as_str()),
                        "`{operation}` showed A's {id}: {text}"
                    );
                }
            } else {
                let got = code(&response);
                assert!(
                    expected.contains(&got),
                    "`{operation}` from B answered {got}: {response}"
                );
            }
        }
    }
    assert_eq!(snapshot(&api, &a).await, before, "A is untouched");
    api.shutdown().await;
}

async fn seeds_are_idempotent(backend: Backend) {
    let api = Api::new(backend).await;
    let services = api.services();
    let email = "admin@platform.example";
    let password = SecretString::from("granite-lantern-meadow-42".to_string());
    let weak = seed::platform(
        services,
        Some(email),
        Some(&SecretString::from("password".to_string())),
    )
    .await;
    assert!(matches!(
        weak,
        Err(seed::SeedError::Invalid {
            setting: "CARTIE_ADMIN_PASSWORD",
            ..
        })
    ));
    // Refused before anything was written; so is a first run without a password.
    assert_eq!(api.events().await, 0, "a refused seed writes nothing");
    let no_password = seed::platform(services, Some(email), None).await;
    assert!(matches!(
        no_password,
        Err(seed::SeedError::Missing("CARTIE_ADMIN_PASSWORD"))
    ));
    assert_eq!(api.events().await, 0);
    let missing = seed::platform(services, None, Some(&password)).await;
    assert!(matches!(
        missing,
        Err(seed::SeedError::Missing("CARTIE_ADMIN_EMAIL"))
    ));

    let mut report = seed::platform(services, Some(email), Some(&password))
        .await
        .unwrap();
    seed::demo(services, None, &mut report).await.unwrap();
    let demo_password = report
        .generated_demo_password
        .clone()
        .expect("generated once");
    let events = api.events().await;
    assert!(
        events > 24,
        "workspaces, members and sample listings: {events}"
    );

    let mut again = seed::platform(services, Some(email), Some(&password))
        .await
        .unwrap();
    seed::demo(services, None, &mut again).await.unwrap();
    assert_eq!(api.events().await, events, "a second run emits no event");
    assert!(again.generated_demo_password.is_none());
    // Once the administrator has a password, the setting may be gone (a server started
    // with only CARTIE_ADMIN_EMAIL): nothing to do, nothing refused.
    seed::platform(services, Some(email), None).await.unwrap();
    assert_eq!(api.events().await, events);

    // The administrator administers the platform; the demo owner sees the sample inventory.
    let admin = ok(sign_in(&api, email, password.expose_secret(), None).await)["signIn"]
        ["accessToken"]
        .as_str()
        .unwrap()
        .to_string();
    let workspaces = ok(api
        .gql(
            &admin,
            "{ platformWorkspaces { slug } me { platformAdmin } }",
            json!({}),
        )
        .await);
    assert_eq!(workspaces["me"]["platformAdmin"], true);
    assert_eq!(
        workspaces["platformWorkspaces"],
        json!([{ "slug": "demo-motors" }, { "slug": "platform" }])
    );
    // Looking into the demo workspace: read-only.
    let look = ok(api
        .gql(
            &admin,
            "mutation { switchWorkspace(workspace: \"demo-motors\") { accessToken role } }",
            json!({}),
        )
        .await);
    assert_eq!(look["switchWorkspace"]["role"], "SUPERADMIN");
    let viewer = look["switchWorkspace"]["accessToken"].as_str().unwrap();
    let seen = ok(api
        .gql(viewer, "{ listings { totalCount } }", json!({}))
        .await);
    assert_eq!(seen["listings"]["totalCount"], 24);
    let write = api
        .gql(
            viewer,
            "mutation { createListing(input: { title: \"x\" }) { id } }",
            json!({}),
        )
        .await;
    assert_eq!(code(&write), "FORBIDDEN");

    let demo = ok(sign_in(&api, seed::DEMO_EMAIL, demo_password.expose_secret(), None).await);
    assert_eq!(demo["signIn"]["workspace"]["slug"], "demo-motors");

    // The Directory rebuilt from the log is the Directory projected as events came.
    let demo_token = demo["signIn"]["accessToken"].as_str().unwrap();
    let view = "{ workspace { name timeZone defaultCurrency } members { id email role disabled } \
                me { workspaces { slug role disabled } } }";
    let before = ok(api.gql(demo_token, view, json!({})).await);
    let admin_view = ok(api
        .gql(&admin, "{ platformWorkspaces { id slug name } }", json!({}))
        .await);
    cartie_projections::rebuild(
        &api.test.db,
        &cartie_projections::directory::DirectoryProjector,
        7,
        |_| {},
    )
    .await
    .unwrap();
    assert_eq!(ok(api.gql(demo_token, view, json!({})).await), before);
    assert_eq!(
        ok(api
            .gql(&admin, "{ platformWorkspaces { id slug name } }", json!({}))
            .await),
        admin_view
    );

    // `cartie replay --all`: every projection rebuilds, whatever its name, and the demo
    // reads the same afterwards.
    let inventory = "{ listings(first: 50) { totalCount edges { node { id title status } } } }";
    let listings = ok(api.gql(demo_token, inventory, json!({})).await);
    for projector in cartie_api::app::projectors() {
        cartie_projections::rebuild(&api.test.db, projector.as_ref(), 100, |_| {})
            .await
            .unwrap_or_else(|e| panic!("rebuilding {}: {e}", projector.name()));
    }
    assert_eq!(ok(api.gql(demo_token, view, json!({})).await), before);
    assert_eq!(
        ok(api.gql(demo_token, inventory, json!({})).await),
        listings
    );
    api.shutdown().await;
}
