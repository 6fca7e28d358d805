//! What MFA a login needs: the tenant's policy, the connection's override, and the app's own
//! `acr_values` (step-up), resolved in one place for `start` (ask the IdP) and `complete`
//! (check its verified answer). The rules themselves are pure: `claims::mfa`.
use crate::claims::mfa::{Level, MfaPolicy, VendorMfa};
use crate::store::entities::{connection, login, tenant};
use crate::upstream::connections::ConnectionConfig;

/// The MFA a login through a connection needs, and how its IdP shows it.
#[derive(Debug, Clone)]
pub struct Need {
    /// The tenant's policy (or the connection's override) requires MFA.
    pub policy: bool,
    /// The weakest level the app's `acr_values` accept (`None`: it asked nothing).
    pub app: Option<Level>,
    /// The operator marked the connection `mfa_enforced_by_idp`.
    pub idp_enforced: bool,
    pub vendor: VendorMfa,
    /// The connection's preset name (`okta`, `entra`, ... or `dev`), for fixes.
    pub preset: String,
}

impl Need {
    /// Whether fedgate asks the IdP for MFA.
    pub fn ask(&self) -> bool {
        self.policy || self.app.is_some_and(|l| l >= Level::IdpEnforced)
    }
}

/// Resolves the need of `login` through `conn` of tenant `t`.
pub fn need(t: &tenant::Model, conn: &connection::Model, login: &login::Model) -> Need {
    let settings = crate::tenant::settings_of(t);
    let (over, idp_enforced, vendor, preset) = match ConnectionConfig::from_row(conn) {
        Ok(c) => {
            let (o, e, v) = c.mfa();
            (o, e, v, c.preset_name())
        }
        Err(_) => (Default::default(), false, VendorMfa::default(), String::new()),
    };
    let app = login.acr_values.as_deref().and_then(|a| crate::claims::mfa::parse_acr_values(a).ok().flatten());
    Need { policy: over.required(settings.mfa), app, idp_enforced, vendor, preset }
}

/// Whether the tenant's policy (with the connection's override) requires MFA: for sessions
/// reused by `/oauth2/authorize`.
pub fn policy_requires(t: &tenant::Model, conn: Option<&connection::Model>) -> bool {
    let tenant_policy = crate::tenant::settings_of(t).mfa;
    match conn.and_then(|c| ConnectionConfig::from_row(c).ok()) {
        Some(c) => c.mfa().0.required(tenant_policy),
        None => tenant_policy == MfaPolicy::Required,
    }
}
