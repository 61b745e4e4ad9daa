//! Value objects. Each one is parsed once at the edge (`parse(..) -> Result<Self, FieldError>`)
//! so an invalid value cannot be represented. Deserialisation does not re-validate: events
//! written under older rules must always load.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A value that failed validation, naming the input field (as the API spells it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Trimmed, non-empty, bounded text without control characters (line breaks allowed
/// where `multiline`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Text(String);

impl Text {
    pub const SHORT: usize = 100;
    pub const TITLE: usize = 200;
    pub const LONG: usize = 10_000;

    pub fn parse(field: &str, value: &str, max_chars: usize) -> Result<Self, FieldError> {
        Self::parse_inner(field, value, max_chars, false)
    }

    pub fn parse_multiline(field: &str, value: &str, max_chars: usize) -> Result<Self, FieldError> {
        Self::parse_inner(field, value, max_chars, true)
    }

    fn parse_inner(
        field: &str,
        value: &str,
        max_chars: usize,
        multiline: bool,
    ) -> Result<Self, FieldError> {
        let trimmed = value.trim();
        if trimmed.is_empty() {
            return Err(FieldError::new(field, "must not be empty"));
        }
        let chars = trimmed.chars().count();
        if chars > max_chars {
            return Err(FieldError::new(
                field,
                format!("must be at most {max_chars} characters (got {chars})"),
            ));
        }
        let allowed =
            |c: char| !c.is_control() || (multiline && (c == '\n' || c == '\t' || c == '\r'));
        if !trimmed.chars().all(allowed) {
            return Err(FieldError::new(
                field,
                "must not contain control characters",
            ));
        }
        Ok(Self(trimmed.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// ISO 4217 currencies the platform prices cars in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Currency {
    USD,
    EUR,
    UAH,
    PLN,
    GBP,
}

impl Currency {
    pub const ALL: [Currency; 5] = [
        Currency::USD,
        Currency::EUR,
        Currency::UAH,
        Currency::PLN,
        Currency::GBP,
    ];

    pub fn code(&self) -> &'static str {
        match self {
            Currency::USD => "USD",
            Currency::EUR => "EUR",
            Currency::UAH => "UAH",
            Currency::PLN => "PLN",
            Currency::GBP => "GBP",
        }
    }
}

impl FromStr for Currency {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|c| c.code() == s.trim().to_ascii_uppercase())
            .ok_or(())
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// An amount of money in integer minor units (cents, kopiykas) of one currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    pub amount_minor: i64,
    pub currency: Currency,
}

impl Money {
    /// Ten billion in major units: no car costs more, and sums stay far from overflow.
    pub const MAX_MINOR: i64 = 1_000_000_000_000;

    /// A non-negative price.
    pub fn price(field: &str, amount_minor: i64, currency: Currency) -> Result<Self, FieldError> {
        if amount_minor < 0 {
            return Err(FieldError::new(field, "must not be negative"));
        }
        if amount_minor > Self::MAX_MINOR {
            return Err(FieldError::new(
                field,
                format!("must be at most {} minor units", Self::MAX_MINOR),
            ));
        }
        Ok(Self {
            amount_minor,
            currency,
        })
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{:02} {}",
            self.amount_minor / 100,
            self.amount_minor % 100,
            self.currency
        )
    }
}

/// A model year: from 1900 to next year (dealers list next year's models early).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Year(u16);

impl Year {
    pub const EARLIEST: i32 = 1900;

    pub fn parse(field: &str, value: i32, current_year: i32) -> Result<Self, FieldError> {
        let latest = current_year + 1;
        if !(Self::EARLIEST..=latest).contains(&value) {
            return Err(FieldError::new(
                field,
                format!(
                    "must be between {} and {latest} (got {value})",
                    Self::EARLIEST
                ),
            ));
        }
        Ok(Self(value as u16))
    }

    pub fn value(&self) -> i32 {
        self.0 as i32
    }
}

/// Odometer reading in kilometres.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Mileage(u32);

impl Mileage {
    pub const MAX_KM: i64 = 5_000_000;

    pub fn parse(field: &str, km: i64) -> Result<Self, FieldError> {
        if km < 0 {
            return Err(FieldError::new(field, "must not be negative"));
        }
        if km > Self::MAX_KM {
            return Err(FieldError::new(
                field,
                format!("must be at most {} km", Self::MAX_KM),
            ));
        }
        Ok(Self(km as u32))
    }

    pub fn km(&self) -> i64 {
        self.0 as i64
    }
}

/// Engine displacement in cubic centimetres.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EngineVolume(u32);

impl EngineVolume {
    pub fn parse(field: &str, cc: i64) -> Result<Self, FieldError> {
        if !(50..=20_000).contains(&cc) {
            return Err(FieldError::new(
                field,
                format!("must be between 50 and 20000 cm³ (got {cc})"),
            ));
        }
        Ok(Self(cc as u32))
    }

    pub fn cc(&self) -> i64 {
        self.0 as i64
    }
}

/// A vehicle identification number (ISO 3779): 17 characters, digits and capital letters
/// except I, O and Q. Stored upper-case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Vin(String);

impl Vin {
    pub fn parse(field: &str, value: &str) -> Result<Self, FieldError> {
        let vin = value.trim().to_ascii_uppercase();
        let len = vin.chars().count();
        if len != 17 {
            return Err(FieldError::new(
                field,
                format!("must be 17 characters (got {len})"),
            ));
        }
        if let Some(bad) = vin
            .chars()
            .find(|c| !c.is_ascii_alphanumeric() || matches!(c, 'I' | 'O' | 'Q'))
        {
            return Err(FieldError::new(
                field,
                format!("may hold only digits and letters other than I, O and Q (found {bad:?})"),
            ));
        }
        Ok(Self(vin))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Declares a closed set of named values that travels as SCREAMING_SNAKE_CASE in events,
/// the database and the API.
macro_rules! named_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(&self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = FieldError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::ALL.iter().copied().find(|v| v.as_str() == s).ok_or_else(|| {
                    FieldError::new(stringify!($name), format!("unknown value {s:?}"))
                })
            }
        }
    };
}
pub(crate) use named_enum;

named_enum!(
    /// Fuel or power source.
    Fuel {
        Petrol => "PETROL",
        Diesel => "DIESEL",
        Hybrid => "HYBRID",
        PluginHybrid => "PLUGIN_HYBRID",
        Electric => "ELECTRIC",
        Lpg => "LPG",
        Cng => "CNG",
    }
);

named_enum!(
    /// Transmission.
    Gearbox {
        Manual => "MANUAL",
        Automatic => "AUTOMATIC",
        Robot => "ROBOT",
        Cvt => "CVT",
    }
);

named_enum!(
    /// Body style.
    BodyType {
        Sedan => "SEDAN",
        Hatchback => "HATCHBACK",
        Liftback => "LIFTBACK",
        Wagon => "WAGON",
        Suv => "SUV",
        Crossover => "CROSSOVER",
        Coupe => "COUPE",
        Convertible => "CONVERTIBLE",
        Minivan => "MINIVAN",
        Pickup => "PICKUP",
        Van => "VAN",
    }
);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_vin_is_normalised_to_upper_case() {
        let vin = Vin::parse("vin", " wvwzzz1jzxw000001 ").unwrap();
        assert_eq!(vin.as_str(), "WVWZZZ1JZXW000001");
    }

    #[test]
    fn a_vin_with_i_o_or_q_is_refused_naming_the_field() {
        for bad in [
            "WVWZZZ1JZXW00000I",
            "WVWZZZ1JZXW00000O",
            "WVWZZZ1JZXW00000Q",
        ] {
            let err = Vin::parse("vin", bad).unwrap_err();
            assert_eq!(err.field, "vin");
        }
        assert!(Vin::parse("vin", "WVWZZZ1JZXW00000").is_err());
        assert!(Vin::parse("vin", "WVWZZZ1JZXW0000012").is_err());
        assert!(Vin::parse("vin", "WVWZZZ1JZXW00000-").is_err());
    }

    #[test]
    fn a_year_may_be_next_year_but_not_later() {
        assert!(Year::parse("year", 2027, 2026).is_ok());
        assert!(Year::parse("year", 2028, 2026).is_err());
        assert!(Year::parse("year", 1900, 2026).is_ok());
        assert!(Year::parse("year", 1899, 2026).is_err());
    }

    #[test]
    fn a_price_must_not_be_negative() {
        assert!(Money::price("price", -1, Currency::USD).is_err());
        assert_eq!(
            Money::price("price", 0, Currency::UAH)
                .unwrap()
                .amount_minor,
            0
        );
        assert!(Money::price("price", Money::MAX_MINOR + 1, Currency::EUR).is_err());
    }

    #[test]
    fn currencies_parse_by_iso_code() {
        assert_eq!("usd".parse::<Currency>(), Ok(Currency::USD));
        assert_eq!(" EUR ".parse::<Currency>(), Ok(Currency::EUR));
        assert!("XYZ".parse::<Currency>().is_err());
    }

    #[test]
    fn text_is_trimmed_and_bounded() {
        assert_eq!(Text::parse("t", "  Camry  ", 10).unwrap().as_str(), "Camry");
        assert!(Text::parse("t", "   ", 10).is_err());
        assert!(Text::parse("t", "ab\u{0}c", 10).is_err());
        assert!(Text::parse("t", "a\nb", 10).is_err());
        assert!(Text::parse_multiline("t", "a\nb", 10).is_ok());
        // The bound counts characters, not bytes.
        assert!(Text::parse("t", "Київ", 4).is_ok());
    }

    proptest! {
        #[test]
        fn any_valid_vin_round_trips(vin in "[A-HJ-NPR-Z0-9]{17}") {
            let parsed = Vin::parse("vin", &vin.to_lowercase()).unwrap();
            prop_assert_eq!(parsed.as_str(), vin.as_str());
        }

        #[test]
        fn a_vin_of_another_length_is_refused(vin in "[A-HJ-NPR-Z0-9]{0,30}") {
            prop_assume!(vin.len() != 17);
            prop_assert!(Vin::parse("vin", &vin).is_err());
        }

        #[test]
        fn years_are_accepted_exactly_inside_the_range(year in 1800i32..2200, now in 2000i32..2100) {
            let ok = Year::parse("year", year, now).is_ok();
            prop_assert_eq!(ok, (1900..=now + 1).contains(&year));
        }

        #[test]
        fn mileage_is_accepted_exactly_inside_the_range(km in -10_000i64..6_000_000) {
            prop_assert_eq!(Mileage::parse("mileageKm", km).is_ok(), (0..=Mileage::MAX_KM).contains(&km));
        }
    }
}
