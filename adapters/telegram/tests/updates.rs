//! Real update JSON (see `fixtures/README.md` for where each came from) read into what the
//! Inbox records.

use cartie_domain::inbox::{FileRef, MessageKind};
use cartie_telegram::{read_json, read_update, Inbound, InboundMessage, Update};

fn fixture(name: &str) -> Update {
    let path = format!("{}/tests/fixtures/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let json = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&json).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn message(name: &str) -> InboundMessage {
    match read_json(&raw(name)).unwrap() {
        Inbound::Message(m) => m,
        other => panic!("{name}: expected a message, got {other:?}"),
    }
}

fn raw(name: &str) -> serde_json::Value {
    let path = format!("{}/tests/fixtures/{name}.json", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn every_message_kind_is_read_with_its_file_and_caption() {
    let cases = [
        ("message_text", MessageKind::Text),
        ("message_photo", MessageKind::Photo),
        ("message_video", MessageKind::Video),
        ("message_voice", MessageKind::Voice),
        ("message_audio", MessageKind::Audio),
        ("message_document", MessageKind::Document),
        ("message_animation", MessageKind::Animation),
        ("message_sticker", MessageKind::Sticker),
        ("message_contact", MessageKind::Contact),
        ("message_location", MessageKind::Location),
    ];
    for (name, kind) in cases {
        let m = message(name);
        let json = raw(name);
        let payload = &json["message"];
        assert_eq!(m.content.kind, kind, "{name}");
        assert_eq!(m.update_id, json["update_id"].as_i64().unwrap(), "{name}");
        assert_eq!(m.chat_id, payload["chat"]["id"].as_i64().unwrap(), "{name}");
        assert_eq!(
            m.telegram_message_id,
            payload["message_id"].as_i64().unwrap(),
            "{name}"
        );
        assert_eq!(
            m.at.timestamp(),
            payload["date"].as_i64().unwrap(),
            "{name}"
        );
        assert_eq!(
            m.contact.first_name.as_deref(),
            payload["chat"]["first_name"].as_str(),
            "{name}"
        );
        let text = payload["text"].as_str().or(payload["caption"].as_str());
        assert_eq!(m.content.text.as_deref(), text.map(str::trim), "{name}");
        if kind.has_file() {
            let key = match kind {
                MessageKind::Photo => "photo",
                MessageKind::Video => "video",
                MessageKind::Voice => "voice",
                MessageKind::Audio => "audio",
                MessageKind::Document => "document",
                MessageKind::Animation => "animation",
                MessageKind::Sticker => "sticker",
                _ => unreachable!(),
            };
            let expected = if kind == MessageKind::Photo {
                // The largest size is the file; the others are kept beside it.
                let sizes = payload["photo"].as_array().unwrap();
                let largest = sizes
                    .iter()
                    .max_by_key(|s| s["width"].as_i64().unwrap() * s["height"].as_i64().unwrap())
                    .unwrap();
                assert_eq!(m.content.other_sizes.len(), sizes.len() - 1, "{name}");
                largest["file_id"].as_str().unwrap().to_string()
            } else {
                payload[key]["file_id"].as_str().unwrap().to_string()
            };
            assert_eq!(
                m.content.file,
                Some(FileRef::TelegramFileId(expected)),
                "{name}"
            );
        }
    }
    let document = message("message_document");
    assert_eq!(
        document.content.file_name.as_deref(),
        raw("message_document")["message"]["document"]["file_name"].as_str()
    );
    let sticker = message("message_sticker");
    assert_eq!(
        sticker.content.emoji.as_deref(),
        raw("message_sticker")["message"]["sticker"]["emoji"].as_str()
    );
    let contact = message("message_contact").content.contact.unwrap();
    assert_eq!(
        contact.phone_number,
        raw("message_contact")["message"]["contact"]["phone_number"]
            .as_str()
            .unwrap()
    );
    let location = message("message_location").content.location.unwrap();
    let expected = raw("message_location")["message"]["location"]["latitude"]
        .as_f64()
        .unwrap();
    assert!((location.latitude - expected).abs() < 1e-4);
}

#[test]
fn a_gif_is_an_animation_though_telegram_sends_a_document_too() {
    // tgbot alone reads it as the document it also is.
    assert!(matches!(
        read_update(&fixture("message_animation")),
        Inbound::Message(m) if m.content.kind == MessageKind::Document
    ));
    assert_eq!(
        message("message_animation").content.kind,
        MessageKind::Animation
    );
    assert!(read_json(&serde_json::json!({"message": "no update id"})).is_err());
}

#[test]
fn an_album_arrives_as_messages_sharing_a_media_group() {
    let first = message("media_group_1");
    let second = message("media_group_2");
    assert!(first.content.media_group_id.is_some());
    assert_eq!(first.content.media_group_id, second.content.media_group_id);
    assert_eq!(first.chat_id, second.chat_id);
    assert_ne!(first.telegram_message_id, second.telegram_message_id);
}

#[test]
fn edits_button_presses_and_membership_changes() {
    let json = raw("edited_message");
    match read_update(&fixture("edited_message")) {
        Inbound::Edited(m) => {
            assert_eq!(
                m.telegram_message_id,
                json["edited_message"]["message_id"].as_i64().unwrap()
            );
            assert_eq!(
                m.at.timestamp(),
                json["edited_message"]["edit_date"].as_i64().unwrap()
            );
        }
        other => panic!("expected an edit, got {other:?}"),
    }
    match read_update(&fixture("callback_query")) {
        Inbound::ButtonPressed {
            callback_query_id,
            message,
        } => {
            assert_eq!(callback_query_id, "586534174085442072");
            assert_eq!(message.content.kind, MessageKind::Callback);
            assert_eq!(message.content.text.as_deref(), Some("y"));
            assert_eq!(message.chat_id, 136563129);
            assert_eq!(message.telegram_message_id, 41);
        }
        other => panic!("expected a button press, got {other:?}"),
    }
    let kicked = raw("my_chat_member_kicked");
    assert_eq!(
        read_update(&fixture("my_chat_member_kicked")),
        Inbound::Blocked {
            chat_id: kicked["my_chat_member"]["chat"]["id"].as_i64().unwrap(),
            update_id: kicked["update_id"].as_i64().unwrap(),
        }
    );
    let member = raw("my_chat_member_member");
    assert_eq!(
        read_update(&fixture("my_chat_member_member")),
        Inbound::Unblocked {
            chat_id: member["my_chat_member"]["chat"]["id"].as_i64().unwrap(),
            update_id: member["update_id"].as_i64().unwrap(),
        }
    );
}

#[test]
fn groups_and_unknown_updates_are_ignored_with_a_reason() {
    for name in ["group_message", "unknown_kind"] {
        match read_update(&fixture(name)) {
            Inbound::Ignored { update_id, reason } => {
                assert_eq!(update_id, raw(name)["update_id"].as_i64().unwrap());
                assert!(!reason.is_empty());
            }
            other => panic!("{name}: expected it ignored, got {other:?}"),
        }
    }
    // An update type no library knows yet still parses and is ignored.
    let future: Update = serde_json::from_value(serde_json::json!({
        "update_id": 1, "some_future_update": {"x": 1}
    }))
    .unwrap();
    assert!(matches!(read_update(&future), Inbound::Ignored { .. }));
}

#[test]
fn control_characters_in_a_buyers_message_are_kept_as_replacement_characters() {
    // The real text update with a NUL and a bell in its text and the sender's name (JSON
    // escapes, as Telegram would send them).
    let mut update = raw("message_text");
    update["message"]["text"] = "Is the Camry\u{0} still\u{7} for sale?\nThanks".into();
    update["message"]["from"]["first_name"] = "Ol\u{0}ena".into();
    update["message"]["chat"]["first_name"] = "Ol\u{0}ena".into();
    let Inbound::Message(read) = read_json(&update).unwrap() else {
        panic!("a message");
    };
    assert_eq!(
        read.content.text.as_deref(),
        Some("Is the Camry\u{fffd} still\u{fffd} for sale?\nThanks")
    );
    assert_eq!(read.contact.first_name.as_deref(), Some("Ol\u{fffd}ena"));
    // Without them the update reads as it is.
    assert_eq!(
        message("message_text").content.text.as_deref(),
        Some("just text")
    );
}
