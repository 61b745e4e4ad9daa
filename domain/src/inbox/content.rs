//! What a message holds: text or one of Telegram's media kinds, with its caption.

use serde::{Deserialize, Serialize};

use crate::values::FieldError;

/// Telegram's limit on a message's text.
pub const MAX_TEXT_CHARS: usize = 4096;
/// Telegram's limit on a media caption.
pub const MAX_CAPTION_CHARS: usize = 1024;
const MAX_FILE_REF_CHARS: usize = 2048;

/// A file: already on Telegram (its `file_id`), or at a public URL for Telegram to fetch
/// (outbound only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileRef {
    TelegramFileId(String),
    Url(String),
}

impl FileRef {
    pub fn telegram(field: &str, file_id: &str) -> Result<Self, FieldError> {
        let file_id = file_id.trim();
        if file_id.is_empty()
            || file_id.len() > MAX_FILE_REF_CHARS
            || file_id.chars().any(char::is_control)
        {
            return Err(FieldError::new(
                field,
                format!("a Telegram file id is 1 to {MAX_FILE_REF_CHARS} characters"),
            ));
        }
        Ok(Self::TelegramFileId(file_id.to_string()))
    }

    pub fn url(field: &str, value: &str) -> Result<Self, FieldError> {
        let value = value.trim();
        if value.len() > MAX_FILE_REF_CHARS {
            return Err(FieldError::new(
                field,
                format!("must be at most {MAX_FILE_REF_CHARS} characters"),
            ));
        }
        let parsed = url::Url::parse(value)
            .map_err(|e| FieldError::new(field, format!("is not a valid URL: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(FieldError::new(field, "must be an http(s) URL"));
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(FieldError::new(field, "must not carry credentials"));
        }
        Ok(Self::Url(value.to_string()))
    }
}

/// The kinds of message the Inbox knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MessageKind {
    Text,
    Photo,
    Video,
    Voice,
    Audio,
    Document,
    Animation,
    Sticker,
    Contact,
    Location,
    /// The buyer pressed one of the bot's inline buttons; the text is the button's data.
    Callback,
    /// Several photos, videos, documents or audio files sent together (outbound; inbound
    /// albums arrive as separate messages sharing a media group id).
    Album,
}

/// Telegram sends 2 to 10 files as one album.
pub const ALBUM_ITEMS: std::ops::RangeInclusive<usize> = 2..=10;

impl MessageKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            MessageKind::Text => "TEXT",
            MessageKind::Photo => "PHOTO",
            MessageKind::Video => "VIDEO",
            MessageKind::Voice => "VOICE",
            MessageKind::Audio => "AUDIO",
            MessageKind::Document => "DOCUMENT",
            MessageKind::Animation => "ANIMATION",
            MessageKind::Sticker => "STICKER",
            MessageKind::Contact => "CONTACT",
            MessageKind::Location => "LOCATION",
            MessageKind::Callback => "CALLBACK",
            MessageKind::Album => "ALBUM",
        }
    }

    /// Kinds that carry one file (and, but for stickers, a caption).
    pub fn has_file(&self) -> bool {
        !matches!(
            self,
            MessageKind::Text
                | MessageKind::Contact
                | MessageKind::Location
                | MessageKind::Callback
                | MessageKind::Album
        )
    }
}

/// A message's content, validated: text within Telegram's limits, a caption only where
/// Telegram allows one, a file for media kinds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageContent {
    pub kind: MessageKind,
    /// The text of a TEXT message, or the caption of media.
    pub text: Option<String>,
    pub file: Option<FileRef>,
    /// A document's file name.
    pub file_name: Option<String>,
    /// A sticker's emoji.
    pub emoji: Option<String>,
    pub contact: Option<SharedContact>,
    pub location: Option<Location>,
    /// Telegram's smaller renditions of a photo (their file ids); `file` is the largest.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub other_sizes: Vec<String>,
    /// Messages of one inbound album share this id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_group_id: Option<String>,
    /// The files of an ALBUM, in order; `text` is the album's caption.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub album: Vec<AlbumItem>,
}

/// One file of an album.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlbumItem {
    pub kind: MessageKind,
    pub file: FileRef,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharedContact {
    pub phone_number: String,
    pub first_name: String,
    pub last_name: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Location {
    pub latitude: f64,
    pub longitude: f64,
}

impl MessageContent {
    pub fn text(field: &str, text: &str) -> Result<Self, FieldError> {
        let text = bounded(field, text, MAX_TEXT_CHARS)?
            .ok_or_else(|| FieldError::new(field, "must not be empty"))?;
        Ok(Self::empty(MessageKind::Text, Some(text)))
    }

    /// Media of any kind that carries a file; `caption` may be empty.
    pub fn media(
        field: &str,
        kind: MessageKind,
        file: FileRef,
        caption: Option<&str>,
    ) -> Result<Self, FieldError> {
        if !kind.has_file() {
            return Err(FieldError::new(
                field,
                format!("{} carries no file", kind.as_str()),
            ));
        }
        let caption = match caption {
            Some(caption) if kind == MessageKind::Sticker && !caption.trim().is_empty() => {
                return Err(FieldError::new(
                    "caption",
                    "a sticker cannot have a caption",
                ))
            }
            Some(caption) => bounded("caption", caption, MAX_CAPTION_CHARS)?,
            None => None,
        };
        let mut content = Self::empty(kind, caption);
        content.file = Some(file);
        Ok(content)
    }

    pub fn contact(
        field: &str,
        phone_number: &str,
        first_name: &str,
        last_name: Option<&str>,
    ) -> Result<Self, FieldError> {
        let phone_number = bounded(field, phone_number, 64)?
            .ok_or_else(|| FieldError::new(field, "a contact needs a phone number"))?;
        let first_name = bounded(field, first_name, 256)?
            .ok_or_else(|| FieldError::new(field, "a contact needs a first name"))?;
        let last_name = last_name
            .map(|l| bounded(field, l, 256))
            .transpose()?
            .flatten();
        let mut content = Self::empty(MessageKind::Contact, None);
        content.contact = Some(SharedContact {
            phone_number,
            first_name,
            last_name,
        });
        Ok(content)
    }

    pub fn location(field: &str, latitude: f64, longitude: f64) -> Result<Self, FieldError> {
        if !(-90.0..=90.0).contains(&latitude) || !(-180.0..=180.0).contains(&longitude) {
            return Err(FieldError::new(
                field,
                "latitude must be within ±90 and longitude within ±180",
            ));
        }
        let mut content = Self::empty(MessageKind::Location, None);
        content.location = Some(Location {
            latitude,
            longitude,
        });
        Ok(content)
    }

    /// A press on one of the bot's inline buttons.
    pub fn callback(data: &str) -> Result<Self, FieldError> {
        let data = bounded("data", data, 256)?
            .ok_or_else(|| FieldError::new("data", "a button press carries data"))?;
        Ok(Self::empty(MessageKind::Callback, Some(data)))
    }

    /// An album: 2 to 10 photos and videos, or only documents, or only audio files, with
    /// one caption.
    pub fn album(items: Vec<AlbumItem>, caption: Option<&str>) -> Result<Self, FieldError> {
        if !ALBUM_ITEMS.contains(&items.len()) {
            return Err(FieldError::new(
                "album",
                format!(
                    "an album holds {} to {} files (got {})",
                    ALBUM_ITEMS.start(),
                    ALBUM_ITEMS.end(),
                    items.len()
                ),
            ));
        }
        let visual = |k: MessageKind| matches!(k, MessageKind::Photo | MessageKind::Video);
        for item in &items {
            if !matches!(
                item.kind,
                MessageKind::Photo
                    | MessageKind::Video
                    | MessageKind::Document
                    | MessageKind::Audio
            ) {
                return Err(FieldError::new(
                    "album",
                    format!("{} cannot be part of an album", item.kind.as_str()),
                ));
            }
            let first = items[0].kind;
            if visual(first) != visual(item.kind) || (!visual(first) && first != item.kind) {
                return Err(FieldError::new(
                    "album",
                    "photos and videos may be mixed; documents and audio files only with their own kind",
                ));
            }
        }
        let caption = match caption {
            Some(caption) => bounded("caption", caption, MAX_CAPTION_CHARS)?,
            None => None,
        };
        let mut content = Self::empty(MessageKind::Album, caption);
        content.album = items;
        Ok(content)
    }

    pub fn with_other_sizes(mut self, other_sizes: Vec<String>) -> Self {
        self.other_sizes = other_sizes;
        self
    }

    /// Details shown beside the content (media group, file name, emoji) are kept as far as
    /// they are printable: cut to length, control characters left out.
    pub fn with_media_group(mut self, media_group_id: Option<&str>) -> Self {
        self.media_group_id = printable(media_group_id, 64);
        self
    }

    pub fn with_file_name(mut self, file_name: Option<&str>) -> Self {
        self.file_name = printable(file_name, 255);
        self
    }

    pub fn with_emoji(mut self, emoji: Option<&str>) -> Self {
        self.emoji = printable(emoji, 16);
        self
    }

    fn empty(kind: MessageKind, text: Option<String>) -> Self {
        Self {
            kind,
            text,
            file: None,
            file_name: None,
            emoji: None,
            contact: None,
            location: None,
            other_sizes: Vec::new(),
            media_group_id: None,
            album: Vec::new(),
        }
    }

    /// A one-line preview for lists of conversations.
    pub fn preview(&self) -> String {
        let body = match (&self.text, self.kind) {
            (Some(text), MessageKind::Text) => text.clone(),
            (Some(data), MessageKind::Callback) => format!("[button] {data}"),
            (None, MessageKind::Album) => format!("[album of {}]", self.album.len()),
            (Some(caption), MessageKind::Album) => {
                format!("[album of {}] {caption}", self.album.len())
            }
            (Some(caption), kind) => format!("[{}] {caption}", kind.as_str().to_lowercase()),
            (None, MessageKind::Contact) => self
                .contact
                .as_ref()
                .map(|c| format!("[contact] {} {}", c.first_name, c.phone_number))
                .unwrap_or_else(|| "[contact]".into()),
            (None, MessageKind::Sticker) => {
                format!("[sticker] {}", self.emoji.clone().unwrap_or_default())
            }
            (None, kind) => format!("[{}]", kind.as_str().to_lowercase()),
        };
        let line = body.replace(['\n', '\r'], " ");
        line.trim().chars().take(140).collect()
    }
}

/// Trimmed text of at most `max` characters (`None` when empty), without control characters
/// other than line breaks and tabs (PostgreSQL cannot store a NUL in text at all).
fn bounded(field: &str, value: &str, max: usize) -> Result<Option<String>, FieldError> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    if value
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(FieldError::new(
            field,
            "must not contain control characters other than line breaks and tabs",
        ));
    }
    let chars = value.chars().count();
    if chars > max {
        return Err(FieldError::new(
            field,
            format!("must be at most {max} characters (got {chars})"),
        ));
    }
    Ok(Some(value.to_string()))
}

/// The printable characters of `value`, trimmed and cut to `max` (`None` when none are left).
fn printable(value: Option<&str>, max: usize) -> Option<String> {
    let kept: String = value?
        .trim()
        .chars()
        .filter(|c| !c.is_control())
        .take(max)
        .collect();
    Some(kept).filter(|k| !k.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_refused_in_what_is_said_and_left_out_of_details() {
        let kept = MessageContent::text("text", "Is it\r\n\tstill there?").unwrap();
        assert_eq!(kept.text.as_deref(), Some("Is it\r\n\tstill there?"));
        for bad in ["a\u{0}b", "bell\u{7}", "\u{1b}[31mred"] {
            let refused = MessageContent::text("text", bad).unwrap_err();
            assert_eq!(refused.field, "text", "{bad:?}");
            assert!(refused.message.contains("control characters"), "{bad:?}");
        }
        let contact = MessageContent::contact("contact", "+380671234567", "Ivan\u{0}", None);
        assert_eq!(contact.unwrap_err().field, "contact");
        assert!(FileRef::telegram("file", "AgAC\u{0}").is_err());
        let photo = FileRef::telegram("file", "AgACAgIAAxkBAAIB").unwrap();
        let media = MessageContent::media("m", MessageKind::Document, photo, Some("caption"))
            .unwrap()
            .with_file_name(Some("price\u{0}list.pdf"))
            .with_emoji(Some("\u{7}"))
            .with_media_group(Some(" 1234\u{0} "));
        assert_eq!(media.file_name.as_deref(), Some("pricelist.pdf"));
        assert_eq!(media.emoji, None);
        assert_eq!(media.media_group_id.as_deref(), Some("1234"));
        assert!(MessageContent::media(
            "m",
            MessageKind::Photo,
            FileRef::telegram("file", "AgACAgIAAxkBAAIB").unwrap(),
            Some("two\u{0}")
        )
        .is_err());
    }

    #[test]
    fn texts_and_captions_keep_to_telegram_limits() {
        assert!(MessageContent::text("text", &"a".repeat(4096)).is_ok());
        let long = MessageContent::text("text", &"a".repeat(4097)).unwrap_err();
        assert_eq!(long.field, "text");
        assert_eq!(
            MessageContent::text("text", "  ").unwrap_err().message,
            "must not be empty"
        );
        let photo = FileRef::telegram("file", "AgACAgIAAxkBAAIB").unwrap();
        assert!(MessageContent::media(
            "m",
            MessageKind::Photo,
            photo.clone(),
            Some(&"c".repeat(1024))
        )
        .is_ok());
        let caption = MessageContent::media(
            "m",
            MessageKind::Photo,
            photo.clone(),
            Some(&"c".repeat(1025)),
        )
        .unwrap_err();
        assert_eq!(caption.field, "caption");
        assert!(MessageContent::media("m", MessageKind::Sticker, photo, Some("hi")).is_err());
    }

    #[test]
    fn urls_must_be_public_http_without_credentials() {
        assert!(FileRef::url("url", "https://cdn.example.com/a.jpg").is_ok());
        assert!(FileRef::url("url", "ftp://cdn.example.com/a.jpg").is_err());
        assert!(FileRef::url("url", "https://user:pw@cdn.example.com/a.jpg").is_err());
    }

    #[test]
    fn previews_are_one_short_line() {
        let text = MessageContent::text("t", "Is the Camry\nstill available?").unwrap();
        assert_eq!(text.preview(), "Is the Camry still available?");
        let photo = MessageContent::media(
            "m",
            MessageKind::Photo,
            FileRef::telegram("f", "id").unwrap(),
            Some("rear bumper"),
        )
        .unwrap();
        assert_eq!(photo.preview(), "[photo] rear bumper");
        let location = MessageContent::location("l", 50.45, 30.52).unwrap();
        assert_eq!(location.preview(), "[location]");
        assert!(MessageContent::location("l", 91.0, 0.0).is_err());
    }

    #[test]
    fn albums_follow_telegram_grouping_rules() {
        let item = |kind| AlbumItem {
            kind,
            file: FileRef::telegram("f", "id").unwrap(),
        };
        let mixed = MessageContent::album(
            vec![item(MessageKind::Photo), item(MessageKind::Video)],
            Some("Both sides"),
        )
        .unwrap();
        assert_eq!(mixed.preview(), "[album of 2] Both sides");
        for bad in [
            vec![item(MessageKind::Photo)],
            vec![item(MessageKind::Photo); 11],
            vec![item(MessageKind::Photo), item(MessageKind::Document)],
            vec![item(MessageKind::Audio), item(MessageKind::Document)],
            vec![item(MessageKind::Sticker), item(MessageKind::Sticker)],
        ] {
            assert_eq!(MessageContent::album(bad, None).unwrap_err().field, "album");
        }
        assert!(MessageContent::album(
            vec![item(MessageKind::Document), item(MessageKind::Document)],
            None
        )
        .is_ok());
    }

    #[test]
    fn button_presses_and_photo_sizes() {
        let press = MessageContent::callback("listing:42").unwrap();
        assert_eq!(press.preview(), "[button] listing:42");
        assert!(MessageContent::callback(" ").is_err());
        // Content recorded before these fields existed still reads.
        let old: MessageContent = serde_json::from_str(
            r#"{"kind":"PHOTO","text":null,"file":{"telegram_file_id":"big"},"file_name":null,"emoji":null,"contact":null,"location":null}"#,
        )
        .unwrap();
        assert!(old.other_sizes.is_empty() && old.media_group_id.is_none());
    }
}
