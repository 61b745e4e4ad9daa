use serde::{Deserialize, Serialize};

use super::{ListingDetails, ListingStatus, Photos};
use crate::values::{BodyType, EngineVolume, Fuel, Gearbox, Mileage, Money, Text, Vin, Year};

/// The decisions a listing takes.
#[derive(Debug, Clone, PartialEq)]
pub enum ListingCommand {
    CreateListing {
        details: ListingDetails,
        price: Option<Money>,
        photos: Photos,
        status: ListingStatus,
    },
    UpdateListingDetails {
        patch: DetailsPatch,
    },
    ChangeListingPrice {
        price: Money,
    },
    ChangeListingStatus {
        status: ListingStatus,
    },
    SetListingPhotos {
        photos: Photos,
    },
}

/// A change to one optional field: leave it, set it, or clear it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Patch<T> {
    #[default]
    Keep,
    Set(T),
    Clear,
}

impl<T: Clone> Patch<T> {
    fn apply_to(&self, current: &Option<T>) -> Option<T> {
        match self {
            Patch::Keep => current.clone(),
            Patch::Set(value) => Some(value.clone()),
            Patch::Clear => None,
        }
    }
}

/// A partial update of a listing's details; the title can be replaced but not cleared.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DetailsPatch {
    pub title: Option<Text>,
    pub description: Patch<Text>,
    pub brand: Patch<Text>,
    pub model: Patch<Text>,
    pub year: Patch<Year>,
    pub mileage_km: Patch<Mileage>,
    pub fuel: Patch<Fuel>,
    pub gearbox: Patch<Gearbox>,
    pub engine_volume_cc: Patch<EngineVolume>,
    pub body: Patch<BodyType>,
    pub colour: Patch<Text>,
    pub vin: Patch<Vin>,
    pub city: Patch<Text>,
}

impl DetailsPatch {
    pub fn apply_to(&self, details: &ListingDetails) -> ListingDetails {
        ListingDetails {
            title: self.title.clone().unwrap_or_else(|| details.title.clone()),
            description: self.description.apply_to(&details.description),
            brand: self.brand.apply_to(&details.brand),
            model: self.model.apply_to(&details.model),
            year: self.year.apply_to(&details.year),
            mileage_km: self.mileage_km.apply_to(&details.mileage_km),
            fuel: self.fuel.apply_to(&details.fuel),
            gearbox: self.gearbox.apply_to(&details.gearbox),
            engine_volume_cc: self.engine_volume_cc.apply_to(&details.engine_volume_cc),
            body: self.body.apply_to(&details.body),
            colour: self.colour.apply_to(&details.colour),
            vin: self.vin.apply_to(&details.vin),
            city: self.city.apply_to(&details.city),
        }
    }
}
