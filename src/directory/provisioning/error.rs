//! Why a provisioning request failed. No HTTP here: the SCIM surface maps each to its status and
//! `scimType` (src/scim/error.rs).
use fedgate_scim::{FilterError, PatchError, ResourceError};

#[derive(Debug, thiserror::Error)]
pub enum ProvisioningError {
    /// The filter does not parse (`invalidFilter`).
    #[error(transparent)]
    Filter(#[from] FilterError),
    /// The filter parses but cannot be evaluated, e.g. `co` on a date (`invalidFilter`).
    #[error("{0}")]
    UnsupportedFilter(String),
    /// `sortBy` names nothing sortable (`invalidPath`).
    #[error("{0}")]
    InvalidSort(String),
    /// A search across resource types asks past the first [`fedgate_scim::MAX_RESULTS`]
    /// results (`tooMany`).
    #[error("{0}")]
    TooMany(String),
    /// The PATCH request is malformed or cannot be applied (its own `scimType`).
    #[error(transparent)]
    Patch(#[from] PatchError),
    /// The resource or an `attributes` list is not acceptable (its own `scimType`).
    #[error(transparent)]
    Resource(#[from] ResourceError),
    /// A member id that is not a live SCIM user of the tenant (`invalidValue`).
    #[error("member {0:?} is not a user of this tenant")]
    UnknownMember(String),
    /// No such resource in this tenant ("user", "group").
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The userName is taken in this tenant (`uniqueness`).
    #[error("userName {0:?} is already taken in this tenant")]
    UserNameTaken(String),
    /// `If-Match` names another version.
    #[error("the resource was modified (If-Match does not match its ETag)")]
    VersionMismatch,
    #[error("database error: {0}")]
    Db(#[from] crate::store::conn::DbErr),
}

impl ProvisioningError {
    /// The SCIM `scimType`, for the errors that have one.
    pub fn scim_type(&self) -> Option<&'static str> {
        match self {
            Self::Filter(_) | Self::UnsupportedFilter(_) => Some("invalidFilter"),
            Self::InvalidSort(_) => Some("invalidPath"),
            Self::TooMany(_) => Some("tooMany"),
            Self::Patch(e) => Some(e.scim_type()),
            Self::Resource(e) => Some(e.scim_type()),
            Self::UnknownMember(_) => Some("invalidValue"),
            Self::UserNameTaken(_) => Some("uniqueness"),
            Self::NotFound(_) | Self::VersionMismatch | Self::Db(_) => None,
        }
    }
}
