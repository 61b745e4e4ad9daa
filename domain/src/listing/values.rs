use serde::{Deserialize, Serialize};

use crate::values::{BodyType, EngineVolume, FieldError, Fuel, Gearbox, Mileage, Text, Vin, Year};

/// What a dealer says about the car. Everything but the title may be unknown while the
/// listing is a draft or an import awaiting review.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListingDetails {
    pub title: Text,
    pub description: Option<Text>,
    pub brand: Option<Text>,
    pub model: Option<Text>,
    pub year: Option<Year>,
    pub mileage_km: Option<Mileage>,
    pub fuel: Option<Fuel>,
    pub gearbox: Option<Gearbox>,
    pub engine_volume_cc: Option<EngineVolume>,
    pub body: Option<BodyType>,
    pub colour: Option<Text>,
    pub vin: Option<Vin>,
    pub city: Option<Text>,
}

impl ListingDetails {
    pub fn titled(title: Text) -> Self {
        Self {
            title,
            description: None,
            brand: None,
            model: None,
            year: None,
            mileage_km: None,
            fuel: None,
            gearbox: None,
            engine_volume_cc: None,
            body: None,
            colour: None,
            vin: None,
            city: None,
        }
    }
}

/// One photo of a listing: a public URL or a file already uploaded to Telegram.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Photo {
    Url(String),
    TelegramFileId(String),
}

impl Photo {
    pub fn url(field: &str, value: &str) -> Result<Self, FieldError> {
        let value = value.trim();
        if value.chars().count() > 2048 {
            return Err(FieldError::new(field, "must be at most 2048 characters"));
        }
        let parsed = url::Url::parse(value)
            .map_err(|e| FieldError::new(field, format!("is not a valid URL: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(FieldError::new(field, "must be an http or https URL"));
        }
        // Events are kept forever and shown to every member: no credentials in them.
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(FieldError::new(
                field,
                "must not contain a user name or password",
            ));
        }
        Ok(Photo::Url(parsed.to_string()))
    }

    pub fn telegram_file_id(field: &str, value: &str) -> Result<Self, FieldError> {
        let value = value.trim();
        let valid = !value.is_empty()
            && value.len() <= 256
            && value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !valid {
            return Err(FieldError::new(
                field,
                "must be a Telegram file id (1 to 256 letters, digits, '_' or '-')",
            ));
        }
        Ok(Photo::TelegramFileId(value.to_string()))
    }
}

/// The ordered photos of a listing; the first is the cover.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Photos(Vec<Photo>);

impl Photos {
    pub const MAX: usize = 30;

    pub fn parse(field: &str, photos: Vec<Photo>) -> Result<Self, FieldError> {
        if photos.len() > Self::MAX {
            return Err(FieldError::new(
                field,
                format!("at most {} photos (got {})", Self::MAX, photos.len()),
            ));
        }
        for (i, photo) in photos.iter().enumerate() {
            if photos[..i].contains(photo) {
                return Err(FieldError::new(
                    format!("{field}[{i}]"),
                    "the same photo is listed twice",
                ));
            }
        }
        Ok(Self(photos))
    }

    pub fn as_slice(&self) -> &[Photo] {
        &self.0
    }
}
