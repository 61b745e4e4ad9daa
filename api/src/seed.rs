//! Seeds: the platform workspace with its first owner, and a demo dealer with sample
//! inventory. Both go through the same commands as the API and are idempotent: what exists
//! is left as it is, so a second run appends no event.

use chrono::{Datelike, Utc};
use secrecy::{ExposeSecret, SecretString};

use cartie_domain::listing::Listing;
use cartie_domain::listing::{ListingCommand, ListingDetails, ListingStatus, Photos};
use cartie_domain::member::{Email, MemberCommand, MemberError, Role};
use cartie_domain::values::{
    BodyType, Currency, EngineVolume, Fuel, Gearbox, Mileage, Money, Text, Vin, Year,
};
use cartie_domain::workspace::{Slug, TimeZone, PLATFORM_SLUG};
use cartie_domain::{Actor, Command, CommandContext, ListingId, UserId, WorkspaceId};
use cartie_projections::directory::queries;
use cartie_store::{CommandError, EventLog};
use cqrs_es::Aggregate;

use crate::accounts;
use crate::app::Services;
use crate::credentials::{self, kinds};
use crate::error::ApiError;

pub const DEMO_SLUG: &str = "demo-motors";
/// The platform administrator's name until they change it.
const ADMIN_NAME: &str = "Platform administrator";
pub const DEMO_EMAIL: &str = "demo@cartie.example";

#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error("{0} is not set")]
    Missing(&'static str),
    #[error("{setting}: {message}")]
    Invalid {
        setting: &'static str,
        message: String,
    },
    #[error("{0:?}")]
    Api(ApiError),
}

impl From<ApiError> for SeedError {
    fn from(error: ApiError) -> Self {
        SeedError::Api(error)
    }
}

/// What a seed run did, for the operator.
#[derive(Debug, Default)]
pub struct SeedReport {
    pub lines: Vec<String>,
    /// The demo member's password when this run generated it (shown once).
    pub generated_demo_password: Option<SecretString>,
}

fn system(workspace: WorkspaceId) -> CommandContext {
    CommandContext::new(workspace, Actor::System, Utc::now())
}

fn text(value: &str) -> Text {
    Text::parse("seed", value, Text::TITLE).expect("seed text is valid")
}

/// Creates the workspace unless it exists.
async fn ensure_workspace(
    services: &Services,
    report: &mut SeedReport,
    slug: &str,
    name: &str,
    currency: Currency,
) -> Result<WorkspaceId, SeedError> {
    let slug = Slug::parse("slug", slug).expect("seed slug is valid");
    let id = WorkspaceId::for_slug(&slug);
    if queries::workspace(&services.db, id.0)
        .await
        .map_err(ApiError::from)?
        .is_some()
    {
        report.lines.push(format!("workspace {slug}: exists"));
        return Ok(id);
    }
    let time_zone = TimeZone::parse("timeZone", "Europe/Kyiv").expect("a known zone");
    match accounts::create_workspace(
        services,
        system(id),
        text(name),
        slug.clone(),
        currency,
        time_zone,
    )
    .await
    {
        Ok(_) => report.lines.push(format!("workspace {slug}: created")),
        // Created by a run in parallel: fine.
        Err(ApiError::Conflict(_)) => report.lines.push(format!("workspace {slug}: exists")),
        Err(error) => return Err(error.into()),
    }
    Ok(id)
}

/// A person the seeds put in place.
struct Person<'a> {
    email: &'a Email,
    name: &'a str,
    role: Role,
    /// Needed only while the person has no password yet.
    password: Option<&'a SecretString>,
    /// Where the password came from, for error messages.
    password_setting: &'static str,
}

/// Makes the person a member with the role and, when they have no password yet, sets it.
async fn ensure_member(
    services: &Services,
    report: &mut SeedReport,
    workspace: WorkspaceId,
    person: Person<'_>,
) -> Result<bool, SeedError> {
    let Person {
        email,
        name,
        role,
        password,
        password_setting,
    } = person;
    let user = UserId::for_email(email);
    let invite = MemberCommand::InviteMember {
        email: email.clone(),
        name: text(name),
        role,
    };
    match services
        .members
        .execute(&user.to_string(), Command::new(system(workspace), invite))
        .await
    {
        Ok(position) => accounts::wait(services, position).await?,
        // Already a member with another role, or disabled: an operator's decision to keep.
        Err(CommandError::Rejected(MemberError::AlreadyMember(_))) => {}
        Err(error) => return Err(ApiError::from(error).into()),
    }
    let has_password = credentials::get(&services.db, user.0, kinds::PASSWORD)
        .await
        .map_err(ApiError::from)?
        .is_some();
    if has_password {
        report
            .lines
            .push(format!("{email}: exists, password left unchanged"));
        return Ok(false);
    }
    let password = password.ok_or(SeedError::Missing(password_setting))?;
    accounts::set_password(
        services,
        system(workspace),
        user,
        email.as_str(),
        name,
        password_setting,
        password.clone(),
    )
    .await
    .map_err(|error| password_error(password_setting, error))?;
    report
        .lines
        .push(format!("{email}: {role} of the workspace, password set"));
    Ok(true)
}

/// The platform workspace and its first owner (a platform administrator).
pub async fn platform(
    services: &Services,
    admin_email: Option<&str>,
    admin_password: Option<&SecretString>,
) -> Result<SeedReport, SeedError> {
    let email = admin_email
        .filter(|e| !e.trim().is_empty())
        .ok_or(SeedError::Missing("CARTIE_ADMIN_EMAIL"))?;
    let email = Email::parse("CARTIE_ADMIN_EMAIL", email).map_err(|e| SeedError::Invalid {
        setting: "CARTIE_ADMIN_EMAIL",
        message: e.message,
    })?;
    // The password is needed, and checked, before anything is written, unless the
    // administrator has one already (it is then left as it is).
    let password = admin_password.filter(|p| !p.expose_secret().is_empty());
    let user = UserId::for_email(&email);
    let has_password = credentials::get(&services.db, user.0, kinds::PASSWORD)
        .await
        .map_err(ApiError::from)?
        .is_some();
    if !has_password {
        let password = password.ok_or(SeedError::Missing("CARTIE_ADMIN_PASSWORD"))?;
        accounts::check_new_password(
            "CARTIE_ADMIN_PASSWORD",
            password,
            email.as_str(),
            ADMIN_NAME,
        )
        .map_err(|error| password_error("CARTIE_ADMIN_PASSWORD", error.into()))?;
    }
    let mut report = SeedReport::default();
    let workspace = ensure_workspace(
        services,
        &mut report,
        PLATFORM_SLUG,
        "Cartie platform",
        Currency::USD,
    )
    .await?;
    ensure_member(
        services,
        &mut report,
        workspace,
        Person {
            email: &email,
            name: ADMIN_NAME,
            role: Role::Owner,
            password,
            password_setting: "CARTIE_ADMIN_PASSWORD",
        },
    )
    .await?;
    Ok(report)
}

/// A refused password as the setting it came from; other errors as they are.
fn password_error(setting: &'static str, error: ApiError) -> SeedError {
    match error {
        ApiError::Validation(field) => SeedError::Invalid {
            setting,
            message: format!("the password {}", field.message),
        },
        other => SeedError::Api(other),
    }
}

/// A demo dealer with a demo owner and sample inventory.
pub async fn demo(
    services: &Services,
    demo_password: Option<&SecretString>,
    report: &mut SeedReport,
) -> Result<(), SeedError> {
    let workspace =
        ensure_workspace(services, report, DEMO_SLUG, "Demo Motors", Currency::USD).await?;
    let email = Email::parse("email", DEMO_EMAIL).expect("a valid address");
    let generated = SecretString::from(format!("demo-{}", &crate::keyfile::random_hex_key()[..16]));
    let (password, was_generated) = match demo_password.filter(|p| !p.expose_secret().is_empty()) {
        Some(password) => (password.clone(), false),
        None => (generated, true),
    };
    let set = ensure_member(
        services,
        report,
        workspace,
        Person {
            email: &email,
            name: "Demo Dealer",
            role: Role::Owner,
            password: Some(&password),
            password_setting: "CARTIE_DEMO_PASSWORD",
        },
    )
    .await?;
    if set && was_generated {
        report.generated_demo_password = Some(password);
    }

    let current_year = Utc::now().year();
    let log = EventLog::new(services.db.clone());
    let mut last = None;
    for (n, car) in DEMO_CARS.iter().enumerate() {
        let id = ListingId::for_idempotency_key(workspace, &format!("demo-{n}"));
        let details = ListingDetails {
            description: Some(text(car.description)),
            brand: Some(text(car.brand)),
            model: Some(text(car.model)),
            year: Some(Year::parse("year", car.year, current_year).expect("a valid year")),
            mileage_km: Some(Mileage::parse("mileageKm", car.km).expect("valid mileage")),
            fuel: Some(car.fuel),
            gearbox: Some(car.gearbox),
            engine_volume_cc: car
                .cc
                .map(|cc| EngineVolume::parse("engineVolumeCc", cc).expect("a valid volume")),
            body: Some(car.body),
            colour: Some(text(car.colour)),
            vin: Some(Vin::parse("vin", car.vin).expect("a valid VIN")),
            city: Some(text(car.city)),
            ..ListingDetails::titled(text(&format!("{} {} {}", car.brand, car.model, car.year)))
        };
        // A listing created by an earlier run is left as it is, whatever became of it.
        let key = id.to_string();
        if log
            .latest_position_of(Listing::TYPE, &key)
            .await
            .map_err(ApiError::from)?
            .is_some()
        {
            continue;
        }
        // Listings are created on sale (or as a draft), then reserved or sold.
        let initial = if car.status.is_initial() {
            car.status
        } else {
            ListingStatus::Available
        };
        let mut commands = vec![ListingCommand::CreateListing {
            details,
            price: Some(
                Money::price("price", car.price_usd * 100, Currency::USD).expect("a valid price"),
            ),
            photos: Photos::default(),
            status: initial,
        }];
        if car.status != initial {
            commands.push(ListingCommand::ChangeListingStatus { status: car.status });
        }
        for command in commands {
            last = services
                .listings
                .execute(&key, Command::new(system(workspace), command))
                .await
                .map_err(ApiError::from)?
                .or(last);
        }
    }
    // The sample inventory is visible once the seed says so.
    if let Some(position) = last {
        if !services
            .inventory
            .wait_for(position, std::time::Duration::from_secs(30))
            .await
        {
            return Err(ApiError::CatchingUp(
                "the inventory has not caught up with the samples".into(),
            )
            .into());
        }
    }
    report.lines.push(format!(
        "{DEMO_SLUG}: {} sample listings in place",
        DEMO_CARS.len()
    ));
    Ok(())
}

struct DemoCar {
    brand: &'static str,
    model: &'static str,
    year: i32,
    km: i64,
    fuel: Fuel,
    gearbox: Gearbox,
    cc: Option<i64>,
    body: BodyType,
    colour: &'static str,
    vin: &'static str,
    city: &'static str,
    price_usd: i64,
    status: ListingStatus,
    description: &'static str,
}

macro_rules! car {
    ($brand:literal, $model:literal, $year:literal, $km:literal, $fuel:ident, $gearbox:ident, $cc:expr, $body:ident, $colour:literal, $vin:literal, $city:literal, $price:literal, $status:ident, $description:literal) => {
        DemoCar {
            brand: $brand,
            model: $model,
            year: $year,
            km: $km,
            fuel: Fuel::$fuel,
            gearbox: Gearbox::$gearbox,
            cc: $cc,
            body: BodyType::$body,
            colour: $colour,
            vin: $vin,
            city: $city,
            price_usd: $price,
            status: ListingStatus::$status,
            description: $description,
        }
    };
}

const DEMO_CARS: &[DemoCar] = &[
    car!(
        "Toyota",
        "Camry",
        2019,
        68_000,
        Hybrid,
        Cvt,
        Some(2487),
        Sedan,
        "White",
        "4T1B31HK5KU000101",
        "Kyiv",
        24_500,
        Available,
        "One owner, full service history at the official dealer."
    ),
    car!(
        "Toyota",
        "RAV4",
        2021,
        41_000,
        Hybrid,
        Cvt,
        Some(2487),
        Crossover,
        "Grey",
        "JTMW43FV50D000102",
        "Kyiv",
        33_900,
        Available,
        "AWD hybrid, adaptive cruise, heated seats."
    ),
    car!(
        "Volkswagen",
        "Passat B8",
        2017,
        162_000,
        Diesel,
        Robot,
        Some(1968),
        Wagon,
        "Blue",
        "WVWZZZ3CZHE000103",
        "Lviv",
        16_800,
        Available,
        "DSG, Highline, panoramic roof, imported from Germany."
    ),
    car!(
        "Volkswagen",
        "Golf 7",
        2016,
        128_000,
        Petrol,
        Robot,
        Some(1395),
        Hatchback,
        "Red",
        "WVWZZZAUZGW000104",
        "Lviv",
        11_900,
        Reserved,
        "1.4 TSI, Comfortline, two sets of tyres."
    ),
    car!(
        "BMW",
        "320d",
        2018,
        139_000,
        Diesel,
        Automatic,
        Some(1995),
        Sedan,
        "Black",
        "WBA8E51070K000105",
        "Kyiv",
        21_400,
        Available,
        "M Sport package, xDrive, LED headlights."
    ),
    car!(
        "BMW",
        "X5",
        2019,
        97_000,
        Diesel,
        Automatic,
        Some(2993),
        Suv,
        "Black",
        "WBACV61000L000106",
        "Odesa",
        52_000,
        Pending,
        "xDrive30d, air suspension, Harman Kardon."
    ),
    car!(
        "Skoda",
        "Octavia A7",
        2018,
        151_000,
        Diesel,
        Robot,
        Some(1968),
        Liftback,
        "Silver",
        "TMBJJ7NE9J0000107",
        "Dnipro",
        13_700,
        Available,
        "Ambition, DSG, cruise control, Ukrainian car."
    ),
    car!(
        "Skoda",
        "Kodiaq",
        2020,
        74_000,
        Petrol,
        Robot,
        Some(1984),
        Suv,
        "White",
        "TMBJJ7NS6L8000108",
        "Kharkiv",
        29_300,
        Available,
        "7 seats, 4x4, Style trim."
    ),
    car!(
        "Audi",
        "A6 C8",
        2019,
        118_000,
        Diesel,
        Robot,
        Some(2967),
        Sedan,
        "Grey",
        "WAUZZZF20KN000109",
        "Kyiv",
        36_500,
        Sold,
        "Quattro, matrix LED, virtual cockpit."
    ),
    car!(
        "Audi",
        "Q5",
        2018,
        102_000,
        Petrol,
        Robot,
        Some(1984),
        Suv,
        "Blue",
        "WAUZZZFY8J2000110",
        "Lviv",
        31_200,
        Available,
        "45 TFSI quattro, S line exterior."
    ),
    car!(
        "Mercedes-Benz",
        "E 220d",
        2018,
        176_000,
        Diesel,
        Automatic,
        Some(1950),
        Sedan,
        "Black",
        "WDD2130041A000111",
        "Kyiv",
        27_800,
        Available,
        "Avantgarde, Widescreen, Burmester."
    ),
    car!(
        "Mercedes-Benz",
        "Vito",
        2017,
        214_000,
        Diesel,
        Automatic,
        Some(2143),
        Van,
        "White",
        "WDF44770313000112",
        "Odesa",
        19_500,
        Available,
        "Tourer, 8 seats, two sliding doors."
    ),
    car!(
        "Hyundai",
        "Tucson",
        2021,
        38_000,
        Petrol,
        Automatic,
        Some(1999),
        Crossover,
        "Green",
        "KMHJ3814GMU000113",
        "Kyiv",
        26_400,
        Available,
        "Official car, warranty until 2026."
    ),
    car!(
        "Kia",
        "Sportage",
        2020,
        59_000,
        Diesel,
        Automatic,
        Some(1598),
        Crossover,
        "Grey",
        "U5YPH814ALL000114",
        "Vinnytsia",
        23_100,
        Available,
        "GT-Line, AWD, panoramic roof."
    ),
    car!(
        "Renault",
        "Megane IV",
        2017,
        187_000,
        Diesel,
        Manual,
        Some(1461),
        Wagon,
        "Brown",
        "VF1RFB00158000115",
        "Lutsk",
        9_800,
        Available,
        "Economical 1.5 dCi, navigation, parking sensors."
    ),
    car!(
        "Nissan",
        "Leaf",
        2019,
        64_000,
        Electric,
        Automatic,
        None,
        Hatchback,
        "White",
        "SJNFAAZE1U0000116",
        "Kyiv",
        15_900,
        Available,
        "40 kWh, 11 of 12 battery bars, heat pump."
    ),
    car!(
        "Tesla",
        "Model 3",
        2020,
        71_000,
        Electric,
        Automatic,
        None,
        Sedan,
        "White",
        "5YJ3E7EB1LF000117",
        "Kyiv",
        27_900,
        Reserved,
        "Long Range AWD, autopilot, free supercharging."
    ),
    car!(
        "Ford",
        "Kuga",
        2019,
        93_000,
        PluginHybrid,
        Cvt,
        Some(2488),
        Crossover,
        "Red",
        "WF0AXXWPMAK000118",
        "Zaporizhzhia",
        21_700,
        Available,
        "Plug-in hybrid, 50 km on electricity."
    ),
    car!(
        "Mazda",
        "CX-5",
        2018,
        112_000,
        Petrol,
        Automatic,
        Some(2488),
        Crossover,
        "Red",
        "JMZKF6W1A00000119",
        "Kharkiv",
        22_600,
        Available,
        "Soul Red, AWD, Bose audio."
    ),
    car!(
        "Honda",
        "CR-V",
        2017,
        134_000,
        Petrol,
        Cvt,
        Some(1498),
        Suv,
        "Black",
        "7FARW2H59HE000120",
        "Dnipro",
        20_300,
        Draft,
        "Imported from the USA, repaired, documents ready."
    ),
    car!(
        "Mitsubishi",
        "Outlander",
        2016,
        158_000,
        Lpg,
        Cvt,
        Some(2360),
        Suv,
        "Silver",
        "JMBXTGF7WGZ000121",
        "Poltava",
        13_400,
        Available,
        "Gas system installed 2022, 4WD."
    ),
    car!(
        "Peugeot",
        "3008",
        2019,
        106_000,
        Diesel,
        Automatic,
        Some(1499),
        Crossover,
        "Blue",
        "VF3MJAHWWKS000122",
        "Lviv",
        19_900,
        Available,
        "GT Line, i-Cockpit, full LED."
    ),
    car!(
        "Lexus",
        "RX 450h",
        2018,
        88_000,
        Hybrid,
        Cvt,
        Some(3456),
        Suv,
        "White",
        "JTJBGMCA00S000123",
        "Kyiv",
        44_800,
        Available,
        "F Sport, Mark Levinson, head-up display."
    ),
    car!(
        "Volvo",
        "XC60",
        2019,
        99_000,
        Diesel,
        Automatic,
        Some(1969),
        Suv,
        "Grey",
        "YV1UZA8VCK1000124",
        "Kyiv",
        34_200,
        Available,
        "Inscription, Pilot Assist, 360 cameras."
    ),
];
